//! Synthetic series: each test checks both that the event scores above a floor and that the
//! quiet part before it stays below it.

use super::Detector;

/// Floor used by the tests. A new record of a few percent of the range scores up to about
/// 0.3, which noise does now and then; clear events score well above.
const FLOOR: f64 = 0.5;
/// Values before the quiet part is judged (the warm-up and the first records of noise).
const SETTLE: usize = 500;

/// Deterministic noise: xorshift64*, summed uniforms for a rough standard normal.
struct Noise(u64);

impl Noise {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.uniform()).sum::<f64>() - 6.0
    }
}

fn run(series: &[f64]) -> Vec<f64> {
    let mut detector = Detector::new();
    series
        .iter()
        .enumerate()
        .map(|(i, &v)| detector.score(i as i64 * 60_000_000, v))
        .collect()
}

fn max(scores: &[f64]) -> f64 {
    scores.iter().copied().fold(0.0, f64::max)
}

/// A daily-like sine with noise.
fn seasonal(n: usize, period: f64, seed: u64) -> Vec<f64> {
    let mut noise = Noise(seed);
    (0..n)
        .map(|i| 50.0 + 10.0 * (i as f64 * std::f64::consts::TAU / period).sin() + noise.normal())
        .collect()
}

/// Asserts the quiet part `..at` stays below the floor and something in `at..at + within`
/// reaches it.
fn assert_detected(scores: &[f64], at: usize, within: usize) {
    let quiet = max(&scores[SETTLE..at]);
    let event = max(&scores[at..at + within]);
    assert!(quiet < FLOOR, "quiet part scored {quiet}");
    assert!(event >= FLOOR, "event scored only {event}");
}

#[test]
fn spike() {
    let mut series = seasonal(2000, 100.0, 1);
    series[1500] += 40.0;
    assert_detected(&run(&series), 1500, 1);
}

#[test]
fn level_shift() {
    let mut series = seasonal(2000, 100.0, 2);
    for v in &mut series[1500..] {
        *v += 20.0;
    }
    assert_detected(&run(&series), 1500, 10);
}

#[test]
fn drift() {
    let mut series = seasonal(3000, 100.0, 3);
    for (i, v) in series[1500..].iter_mut().enumerate() {
        *v += i as f64 * 0.1;
    }
    // A drift crosses the old range slowly, so its first records are small: the test asks
    // for a clear report within the drift and none as high before it.
    let scores = run(&series);
    let quiet = max(&scores[SETTLE..1500]);
    let event = max(&scores[1500..2100]);
    assert!(quiet < 0.4, "quiet part scored {quiet}");
    assert!(event >= 0.45, "drift scored only {event}");
}

#[test]
fn frequency_change() {
    let mut noise = Noise(4);
    let series: Vec<f64> = (0..3000)
        .map(|i| {
            let period = if i < 2000 { 100.0 } else { 7.0 };
            let phase = if i < 2000 {
                i as f64 / period
            } else {
                20.0 + (i - 2000) as f64 / period
            };
            50.0 + 10.0 * (phase * std::f64::consts::TAU).sin() + 0.2 * noise.normal()
        })
        .collect();
    let scores = run(&series);
    let quiet = max(&scores[SETTLE..2000]);
    let event = max(&scores[2000..2100]);
    assert!(quiet < 0.1, "quiet part scored {quiet}");
    assert!(event >= 0.1, "event scored only {event}");
}

#[test]
fn flatline_then_change() {
    let mut series = vec![7.0; 1000];
    series.extend(std::iter::repeat_n(7.5, 100));
    let scores = run(&series);
    assert_eq!(max(&scores[..1000]), 0.0);
    assert!(scores[1000] >= FLOOR, "change scored {}", scores[1000]);
}

#[test]
fn flatline_after_activity() {
    let mut series = seasonal(3000, 100.0, 5);
    for v in &mut series[2000..] {
        *v = 0.0;
    }
    assert_detected(&run(&series), 2000, 50);
}

#[test]
fn noise_only_gives_few_alarms() {
    let mut noise = Noise(6);
    let series: Vec<f64> = (0..20_000).map(|_| 3.0 + noise.normal()).collect();
    let scores = run(&series);
    let alarms = scores.iter().filter(|&&s| s >= FLOOR).count();
    assert!(alarms <= 2, "{alarms} alarms on pure noise");
}

#[test]
fn rests_after_an_alarm() {
    let mut series = seasonal(2000, 100.0, 7);
    for v in &mut series[1500..] {
        *v += 20.0;
    }
    let scores = run(&series);
    let alarms = scores[1500..].iter().filter(|&&s| s >= 0.1).count();
    assert!(
        (1..=3).contains(&alarms),
        "{alarms} alarms for one level shift"
    );
}

#[test]
fn hostile_inputs_never_panic_nor_grow() {
    let mut detector = Detector::new();
    let bytes = detector.heap_bytes();
    let nasty = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e308,
        -1e308,
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        0.0,
        -0.0,
        1e-300,
    ];
    let mut noise = Noise(8);
    for i in 0..50_000i64 {
        let value = match i % 7 {
            0 => nasty[(i as usize / 7) % nasty.len()],
            1 => {
                if i % 2 == 0 {
                    1e300
                } else {
                    -1e300
                }
            }
            2 => 42.0,
            _ => noise.normal(),
        };
        // Timestamps going backwards and repeating.
        let at = if i % 3 == 0 { i64::MIN + i } else { 1_000 - i };
        let score = detector.score(at, value);
        assert!((0.0..=1.0).contains(&score), "score {score} for {value}");
        assert_eq!(detector.heap_bytes(), bytes);
    }
    for value in [1.0, f64::NAN, 2.0, f64::INFINITY, 3.0] {
        let score = detector.score(0, value);
        assert!((0.0..=1.0).contains(&score));
    }
}

#[test]
fn alternating_signs_and_constants() {
    for series in [
        (0..5000)
            .map(|i| if i % 2 == 0 { 1e308 } else { -1e308 })
            .collect::<Vec<f64>>(),
        vec![f64::MAX; 5000],
        vec![0.0; 5000],
        (0..5000).map(|i| i as f64 * 1e300).collect(),
    ] {
        for score in run(&series) {
            assert!((0.0..=1.0).contains(&score));
        }
    }
}

#[test]
fn fits_the_memory_budget() {
    let mut detector = Detector::new();
    let before = detector.heap_bytes();
    let mut noise = Noise(9);
    for i in 0..100_000 {
        detector.score(i, noise.normal() * (1 + i % 1000) as f64);
    }
    assert_eq!(detector.heap_bytes(), before);
    let total = std::mem::size_of::<Detector>() + detector.heap_bytes();
    assert!(total <= 4096, "{total} bytes per series");
}

/// Readings every five minutes for `days` days: a daily sine (low at 18:00 UTC) with noise.
fn daily(days: usize, seed: u64) -> Vec<(i64, f64)> {
    let mut noise = Noise(seed);
    let step = 300_000_000i64;
    let per_day = 288;
    (0..days * per_day)
        .map(|i| {
            let phase = (i % per_day) as f64 / per_day as f64 * std::f64::consts::TAU;
            (
                1_400_000_000_000_000 + i as i64 * step,
                50.0 + 10.0 * phase.sin() + 0.5 * noise.normal(),
            )
        })
        .collect()
}

fn run_timed(series: &[(i64, f64)]) -> Vec<f64> {
    let mut detector = Detector::new();
    series.iter().map(|&(t, v)| detector.score(t, v)).collect()
}

#[test]
fn value_unusual_for_its_hour() {
    // On day 10 the evening low does not come: from 17:00 to 19:00 the series stays at its
    // daily mean, a value it shows twice every day, in a shape it shows every day.
    let mut series = daily(14, 10);
    let at = 10 * 288 + 17 * 12;
    for (_, v) in &mut series[at..at + 24] {
        *v = 50.0;
    }
    let scores = run_timed(&series);
    let quiet = max(&scores[2 * 288..at]);
    let event = max(&scores[at..at + 24]);
    assert!(quiet < FLOOR, "quiet part scored {quiet}");
    assert!(event >= FLOOR, "missing daily low scored only {event}");
}

#[test]
fn timestamps_without_a_rhythm_change_nothing_essential() {
    // All readings at one instant: the hour's level is a plain running level.
    let mut series = seasonal(2000, 100.0, 11);
    series[1500] += 40.0;
    let mut detector = Detector::new();
    let scores: Vec<f64> = series.iter().map(|&v| detector.score(0, v)).collect();
    assert_detected(&scores, 1500, 1);
}
