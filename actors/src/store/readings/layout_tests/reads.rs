//! The read API over memory and chunks at once, mid-merge: each reading returned once,
//! in order, and the same once merged.

use super::*;
use crate::store::Reader;

#[test]
fn reads_combine_memory_and_chunks_and_return_each_reading_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&settings(dir.path())).unwrap();
    store.write(&fleet(0, 250)).unwrap();
    store.upkeep(usize::MAX).unwrap(); // mid-merge: the sealed generation is in memory and partly chunked
    let reader = Reader::new(&settings(dir.path()), store.memtable());
    let d0: Vec<i64> = (0..250).filter(|n| n % 3 == 0).collect();

    let last = reader.last("d0", 1_000).unwrap();
    assert_eq!(last.len(), d0.len());
    assert_eq!(last[0].timestamp, format_micros(BASE + 249 * 1_000_000));
    assert!(last.windows(2).all(|w| w[0].timestamp > w[1].timestamp));
    assert_eq!(reader.last("d0", 5).unwrap().len(), 5);

    let latest = reader.latest("d0").unwrap();
    let sensors: Vec<(&str, &str)> = latest
        .iter()
        .map(|r| (r.sensor_type.as_str(), r.data.as_str()))
        .collect();
    assert_eq!(
        sensors,
        [("battery", r#"{"n":249}"#), ("gps", r#"{"n":246}"#)]
    );

    let (from, to) = (BASE + 30 * 1_000_000, BASE + 60 * 1_000_000);
    let range = reader.range("d0", (from, to), 10_000).unwrap();
    let expected: Vec<String> = (30..60)
        .filter(|n| n % 3 == 0)
        .map(|n| format_micros(BASE + n * 1_000_000))
        .collect();
    let got: Vec<String> = range.iter().map(|r| r.timestamp.clone()).collect();
    assert_eq!(got, expected);
    assert_eq!(reader.range("d0", (from, to), 3).unwrap().len(), 3);
    assert!(reader.last("nobody", 10).unwrap().is_empty());

    upkeep_until_merged(&mut store);
    assert_eq!(
        reader.last("d0", 1_000).unwrap(),
        last,
        "the same once merged"
    );
}
