//! The dead letters' byte quota: dead letters are kept whole, so a client sending
//! nothing but rejected messages could fill the disk with them. Past `store.
//! dead_letter_quota` bytes, the oldest are shed, in the same transaction as the new ones:
//! the newest evidence is the most useful, and the readings never give way.

use rusqlite::{params, Transaction};

/// What one dead letter weighs against the quota: what it stores of the device's.
/// (`length` counts a text's characters: cast to a blob, it counts bytes.)
pub const ROW_BYTES: &str = "length(payload) + length(CAST(topic AS BLOB)) \
    + length(CAST(client_id AS BLOB)) + length(CAST(reason AS BLOB))";

/// What a shedding removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shed {
    pub rows: usize,
    pub bytes: u64,
}

/// Sheds the oldest dead letters until `total` fits in `quota`; `total` is updated.
pub fn shed_over_quota(
    tx: &Transaction<'_>,
    quota: u64,
    total: &mut u64,
) -> rusqlite::Result<Shed> {
    let mut shed = Shed::default();
    if *total <= quota {
        return Ok(shed);
    }
    let mut last_id = None;
    {
        let mut oldest = tx.prepare_cached(&format!(
            "SELECT id, {ROW_BYTES} FROM dead_letters ORDER BY id"
        ))?;
        let mut rows = oldest.query([])?;
        while *total - shed.bytes > quota {
            let Some(row) = rows.next()? else {
                break;
            };
            let (id, bytes): (i64, i64) = (row.get(0)?, row.get(1)?);
            last_id = Some(id);
            shed.rows += 1;
            shed.bytes += u64::try_from(bytes).unwrap_or(0);
        }
    }
    if let Some(last_id) = last_id {
        tx.execute("DELETE FROM dead_letters WHERE id <= ?1", params![last_id])?;
    }
    *total -= shed.bytes.min(*total);
    Ok(shed)
}
