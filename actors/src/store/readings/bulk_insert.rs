//! Many rows per INSERT statement: SQLite's fixed cost per statement (and, on an
//! AUTOINCREMENT table, its update of `sqlite_sequence`) is paid once per
//! `ROWS_PER_INSERT` rows instead of once per row.

use rusqlite::{CachedStatement, Connection, ToSql};

/// Rows per statement: 64 rows of 6 columns stay far below SQLite's limit on parameters.
pub const ROWS_PER_INSERT: usize = 64;

/// Inserts every item of `items` with `head` (`INSERT [OR IGNORE] INTO t (c1, …, cn)`),
/// `bind` giving each item's `columns` values in order. Returns the rows inserted (those
/// an `OR IGNORE` skipped are not counted).
pub fn insert_all<T>(
    conn: &Connection,
    head: &str,
    columns: usize,
    items: &[T],
    mut bind: impl FnMut(&mut Values<'_, '_>, &T) -> rusqlite::Result<()>,
) -> rusqlite::Result<usize> {
    let mut inserted = 0;
    let mut full = items.chunks_exact(ROWS_PER_INSERT);
    if full.len() > 0 {
        let mut insert = conn.prepare_cached(&statement(head, columns, ROWS_PER_INSERT))?;
        for rows in &mut full {
            inserted += run(&mut insert, rows, &mut bind)?;
        }
    }
    let rest = full.remainder();
    if !rest.is_empty() {
        let mut insert = conn.prepare_cached(&statement(head, columns, 1))?;
        for row in rest.chunks(1) {
            inserted += run(&mut insert, row, &mut bind)?;
        }
    }
    Ok(inserted)
}

/// The values of one statement, bound in order.
pub struct Values<'s, 'c> {
    insert: &'s mut CachedStatement<'c>,
    bound: usize,
}

impl Values<'_, '_> {
    pub fn bind(&mut self, value: impl ToSql) -> rusqlite::Result<()> {
        self.bound += 1;
        self.insert.raw_bind_parameter(self.bound, value)
    }
}

fn run<T>(
    insert: &mut CachedStatement<'_>,
    rows: &[T],
    bind: &mut impl FnMut(&mut Values<'_, '_>, &T) -> rusqlite::Result<()>,
) -> rusqlite::Result<usize> {
    let mut values = Values { insert, bound: 0 };
    for row in rows {
        bind(&mut values, row)?;
    }
    insert.raw_execute()
}

fn statement(head: &str, columns: usize, rows: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    format!("{head} VALUES {}", vec![row; rows].join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_inserted_whatever_the_count_and_ignored_ones_are_not_counted() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .unwrap();
        for count in [0, 1, 63, 64, 65, 200] {
            conn.execute_batch("DELETE FROM t").unwrap();
            let items: Vec<i64> = (0..count).collect();
            let head = "INSERT INTO t (k, v)";
            let inserted = insert_all(&conn, head, 2, &items, |values, k| {
                values.bind(k)?;
                values.bind(format!("v{k}"))
            })
            .unwrap();
            let (rows, sum): (i64, i64) = conn
                .query_row("SELECT count(*), coalesce(sum(k), 0) FROM t", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap();
            assert_eq!((inserted as i64, rows), (count, count));
            assert_eq!(sum, items.iter().sum::<i64>());
        }
        let head = "INSERT OR IGNORE INTO t (k, v)";
        let again: Vec<i64> = (150..250).collect();
        let inserted = insert_all(&conn, head, 2, &again, |values, k| {
            values.bind(k)?;
            values.bind("again")
        })
        .unwrap();
        assert_eq!(inserted, 50, "150..200 were there");
    }
}
