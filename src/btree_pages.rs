//! Just enough of SQLite's b-tree page format (fileformat2 §1.6) to find interior pages: a
//! page's kind, an interior page's children, and the root pages listed in `sqlite_master`.
//! Pure; used by the interior-page prefetch ([`crate::replica`]'s `interior`). Anything that
//! does not parse is skipped, never an error: the prefetch is only an optimisation.

/// The kind of a b-tree page (first byte of its header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKind {
    InteriorIndex,
    InteriorTable,
    LeafIndex,
    LeafTable,
}

impl PageKind {
    pub fn is_interior(self) -> bool {
        matches!(self, PageKind::InteriorIndex | PageKind::InteriorTable)
    }
}

/// Where the b-tree header starts: after the 100-byte database header on page 1.
fn header_offset(pgno: u32) -> usize {
    if pgno == 1 { 100 } else { 0 }
}

pub fn page_kind(page: &[u8], pgno: u32) -> Option<PageKind> {
    match page.get(header_offset(pgno))? {
        2 => Some(PageKind::InteriorIndex),
        5 => Some(PageKind::InteriorTable),
        10 => Some(PageKind::LeafIndex),
        13 => Some(PageKind::LeafTable),
        _ => None,
    }
}

fn be16(b: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]) as usize)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([*b.get(at)?, *b.get(at + 1)?, *b.get(at + 2)?, *b.get(at + 3)?]))
}

/// Cell offsets of a b-tree page.
fn cells(page: &[u8], pgno: u32) -> Option<Vec<usize>> {
    let h = header_offset(pgno);
    let kind = page_kind(page, pgno)?;
    let n = be16(page, h + 3)?;
    let array = h + if kind.is_interior() { 12 } else { 8 };
    (0..n).map(|i| be16(page, array + 2 * i)).collect()
}

/// The child page numbers of an interior page (left children, then the right-most pointer);
/// empty for a leaf or a page that does not parse.
pub fn interior_children(page: &[u8], pgno: u32) -> Vec<u32> {
    let go = || -> Option<Vec<u32>> {
        if !page_kind(page, pgno)?.is_interior() {
            return None;
        }
        let mut out: Vec<u32> = cells(page, pgno)?.into_iter().filter_map(|c| be32(page, c)).collect();
        out.push(be32(page, header_offset(pgno) + 8)?);
        out.retain(|&p| p != 0);
        Some(out)
    };
    go().unwrap_or_default()
}

/// A SQLite varint at `at`: (value, length).
fn varint(b: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for i in 0..9 {
        let byte = *b.get(at + i)?;
        if i == 8 {
            return Some(((v << 8) | byte as u64, 9));
        }
        v = (v << 7) | (byte & 0x7f) as u64;
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Bytes a column of this serial type takes in the record body.
fn serial_len(t: u64) -> Option<usize> {
    Some(match t {
        0 | 8 | 9 => 0,
        1 => 1,
        2 => 2,
        3 => 3,
        4 => 4,
        5 => 6,
        6 | 7 => 8,
        10 | 11 => return None,
        n => ((n - 12) / 2) as usize,
    })
}

fn int_value(b: &[u8], t: u64) -> Option<i64> {
    let n = serial_len(t)?;
    if !(1..=6).contains(&t) || b.len() < n {
        return None;
    }
    let mut v: i64 = if b[0] & 0x80 != 0 { -1 } else { 0 };
    for &x in &b[..n] {
        v = (v << 8) | x as i64;
    }
    Some(v)
}

/// The `rootpage` column (the fourth) of every row on a leaf page of `sqlite_master`, whose
/// local payload holds it (`usable` = page size − reserved bytes).
pub fn schema_root_pages(page: &[u8], pgno: u32, usable: usize) -> Vec<u32> {
    if page_kind(page, pgno) != Some(PageKind::LeafTable) {
        return Vec::new();
    }
    let one = |c: usize| -> Option<u32> {
        let (payload, n1) = varint(page, c)?;
        let (_rowid, n2) = varint(page, c + n1)?;
        let start = c + n1 + n2;
        // Local part of the payload (fileformat2 §1.6, table b-tree leaf cells).
        let x = usable.checked_sub(35)?;
        let local = if payload as usize <= x {
            payload as usize
        } else {
            let m = ((usable - 12) * 32 / 255).checked_sub(23)?;
            let k = m + (payload as usize - m) % (usable - 4);
            if k <= x { k } else { m }
        };
        let rec = page.get(start..start.checked_add(local)?)?;
        let (hsize, mut at) = varint(rec, 0)?;
        let mut types = Vec::new();
        while at < hsize as usize && types.len() < 4 {
            let (t, n) = varint(rec, at)?;
            types.push(t);
            at += n;
        }
        if types.len() < 4 {
            return None;
        }
        let mut body = hsize as usize;
        for &t in &types[..3] {
            body += serial_len(t)?;
        }
        let root = int_value(rec.get(body..)?, types[3])?;
        u32::try_from(root).ok().filter(|&r| r > 0)
    };
    cells(page, pgno).unwrap_or_default().into_iter().filter_map(one).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 512-byte interior table page with children 7, 9 and right-most 11.
    fn interior() -> Vec<u8> {
        let mut p = vec![0u8; 512];
        p[0] = 5;
        p[3..5].copy_from_slice(&2u16.to_be_bytes());
        p[8..12].copy_from_slice(&11u32.to_be_bytes());
        p[12..14].copy_from_slice(&500u16.to_be_bytes());
        p[14..16].copy_from_slice(&490u16.to_be_bytes());
        p[500..504].copy_from_slice(&7u32.to_be_bytes());
        p[490..494].copy_from_slice(&9u32.to_be_bytes());
        p
    }

    #[test]
    fn interior_pages_list_their_children() {
        let p = interior();
        assert_eq!(page_kind(&p, 2), Some(PageKind::InteriorTable));
        assert_eq!(interior_children(&p, 2), vec![7, 9, 11]);
        let mut leaf = p.clone();
        leaf[0] = 13;
        assert!(interior_children(&leaf, 2).is_empty());
        assert!(interior_children(&p[..10], 2).is_empty(), "truncated: nothing, no panic");
        assert_eq!(page_kind(&[0u8; 4], 3), None);
    }

    #[test]
    fn schema_rows_give_their_root_pages() {
        // One sqlite_master row: ('table', 't', 't', 3, 'CREATE TABLE t(x)') on page 1.
        let cols: [&[u8]; 3] = [b"table", b"t", b"t"];
        let sql = b"CREATE TABLE t(x)";
        let mut header = vec![0u8];
        for c in cols {
            header.push((13 + 2 * c.len()) as u8);
        }
        header.push(1); // 1-byte integer
        header.push((13 + 2 * sql.len()) as u8);
        header[0] = header.len() as u8;
        let mut rec = header.clone();
        for c in cols {
            rec.extend_from_slice(c);
        }
        rec.push(3);
        rec.extend_from_slice(sql);
        let mut cell = vec![rec.len() as u8, 1];
        cell.extend_from_slice(&rec);
        let mut p = vec![0u8; 512];
        p[100] = 13;
        p[103..105].copy_from_slice(&1u16.to_be_bytes());
        let at = 512 - cell.len();
        p[108..110].copy_from_slice(&(at as u16).to_be_bytes());
        p[at..].copy_from_slice(&cell);
        assert_eq!(schema_root_pages(&p, 1, 512), vec![3]);
        assert!(schema_root_pages(&p[..300], 1, 512).is_empty());
    }

    #[test]
    fn varints_and_signed_ints() {
        assert_eq!(varint(&[0x81, 0x00], 0), Some((128, 2)));
        assert_eq!(int_value(&[0xff], 1), Some(-1));
        assert_eq!(int_value(&[0x01, 0x00], 2), Some(256));
    }
}
