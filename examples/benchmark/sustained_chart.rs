//! `sustained.png`: the sustained run's ack rate (Y) against the readings stored (X), with
//! the target as a dashed line, so that a store slowing down as it fills is seen at a glance.

use std::path::Path;

use plotters::prelude::*;

use crate::chart::register_font;
use crate::sustained::{Stretch, TARGET_LAST_QUARTER};

/// `stretches`: the rate at each 1 %; `tenths`: (first reading, last reading, msg/s) of
/// each tenth, drawn as steps over the noisier 1 % line.
pub fn draw(
    path: &Path,
    stretches: &[Stretch],
    tenths: &[(u64, u64, f64)],
) -> Result<(), Box<dyn std::error::Error>> {
    register_font()?;
    let root = BitMapBackend::new(path, (1200, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let readings = stretches.last().map_or(1, |s| s.acked).max(1) as f64;
    let top = stretches
        .iter()
        .map(|s| s.rate)
        .fold(TARGET_LAST_QUARTER, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Eliot sustained ingestion: acked msg/s as the store fills",
            ("sans-serif", 22),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..readings, 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc("readings stored")
        .y_desc("msg/s")
        .x_label_formatter(&|v| readings_label(*v))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style(("sans-serif", 14))
        .draw()?;
    chart
        .draw_series([PathElement::new(
            [(0.0, TARGET_LAST_QUARTER), (readings, TARGET_LAST_QUARTER)],
            RED.stroke_width(1),
        )])?
        .label(format!("target {TARGET_LAST_QUARTER:.0} msg/s"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
    let points: Vec<(f64, f64)> = stretches.iter().map(|s| (s.acked as f64, s.rate)).collect();
    chart
        .draw_series([PathElement::new(
            points.clone(),
            BLUE.mix(0.6).stroke_width(1),
        )])?
        .label("acked msg/s (each 1 % of the readings)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
    chart.draw_series(points.iter().map(|&p| Circle::new(p, 2, BLUE.filled())))?;
    let steps: Vec<(f64, f64)> = tenths
        .iter()
        .flat_map(|&(from, to, rate)| [(from as f64, rate), (to as f64, rate)])
        .collect();
    chart
        .draw_series([PathElement::new(steps, GREEN.stroke_width(4))])?
        .label("acked msg/s (each tenth)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], GREEN.stroke_width(4)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}

/// 2.5M, 40k, 800.
fn readings_label(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.0}k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}
