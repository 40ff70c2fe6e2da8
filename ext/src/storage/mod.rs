//! Native storage backends. Placeholder: being written.
