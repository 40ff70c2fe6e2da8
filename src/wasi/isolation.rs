//! Request isolation in the component (issue 11): pooled instances serve many requests, so
//! nothing one request does may reach the next.
//!
//! - An authorizer, set on every connection, refuses what could carry state across requests or
//!   reach beyond the replica: `ATTACH`/`DETACH`, TEMP tables, views, indexes and triggers,
//!   and the `load_extension` function. The sandbox would stop most of it too; this refuses it
//!   at SQL level, with a clear error.
//! - Each request starts at the latest state: the time a previous request set (by its `time`
//!   field or a `PRAGMA litestream_time` in its SQL) is reset before the next one runs.
//! - Results are capped in rows and bytes ([`ResultCap`]), with an error that names the cap.

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

/// The authorizer policy (pure: unit-tested alone).
pub fn authorize(ctx: AuthContext<'_>) -> Authorization {
    match ctx.action {
        AuthAction::Attach { .. }
        | AuthAction::Detach { .. }
        | AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::CreateTempView { .. } => Authorization::Deny,
        AuthAction::Function { function_name } if function_name.eq_ignore_ascii_case("load_extension") => {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }
}

/// Row and byte limits of one result (env `LTXVFS_MAX_ROWS`, `LTXVFS_MAX_RESULT_BYTES`).
#[derive(Debug, Clone, Copy)]
pub struct ResultCap {
    pub rows: usize,
    pub bytes: usize,
}

impl Default for ResultCap {
    fn default() -> Self {
        Self { rows: 100_000, bytes: 16 * 1024 * 1024 }
    }
}

impl ResultCap {
    pub fn from_env() -> Self {
        let get = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse::<usize>().ok()).filter(|&n| n > 0);
        let d = Self::default();
        Self {
            rows: get("LTXVFS_MAX_ROWS").unwrap_or(d.rows),
            bytes: get("LTXVFS_MAX_RESULT_BYTES").unwrap_or(d.bytes),
        }
    }

    /// An error once `rows` rows or `bytes` bytes are exceeded.
    pub fn check(&self, rows: usize, bytes: usize) -> Result<(), String> {
        if rows > self.rows {
            return Err(format!("result too large: more than {} rows (LTXVFS_MAX_ROWS)", self.rows));
        }
        if bytes > self.bytes {
            return Err(format!("result too large: more than {} bytes (LTXVFS_MAX_RESULT_BYTES)", self.bytes));
        }
        Ok(())
    }
}
