//! The report's bar charts (plotters), and the font they are drawn with.

use plotters::prelude::*;

use crate::report::Figure;

pub fn short(name: &str) -> &str {
    name.split(',').nth(1).map_or(name, str::trim)
}

/// Bars with min–max whiskers.
pub fn bar_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    bars: &[(&str, Figure)],
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let top = bars.iter().map(|(_, f)| f.max).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..bars.len() as f64, 0f64..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style(("sans-serif", 14))
        .draw()?;
    let palette = [&BLUE, &GREEN, &RED, &MAGENTA, &CYAN];
    for (i, (label, f)) in bars.iter().enumerate() {
        let x = i as f64;
        let color = palette[i % palette.len()];
        chart.draw_series([Rectangle::new(
            [(x + 0.15, 0.0), (x + 0.85, f.median)],
            color.mix(0.7).filled(),
        )])?;
        chart.draw_series([PathElement::new(
            vec![(x + 0.5, f.min), (x + 0.5, f.max)],
            BLACK.stroke_width(2),
        )])?;
        let value = if f.median >= 100.0 {
            format!("{:.0}", f.median)
        } else {
            format!("{:.1}", f.median)
        };
        chart.draw_series([Text::new(
            value,
            (x + 0.2, f.max + top * 0.02),
            ("sans-serif", 14).into_font(),
        )])?;
        chart.draw_series([Text::new(
            label.to_string(),
            (x + 0.12, -top * 0.03),
            ("sans-serif", 14).into_font(),
        )])?;
    }
    Ok(())
}

/// plotters draws text with a font it is given: DejaVu Sans from the system.
pub fn register_font() -> Result<(), String> {
    const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    let bytes = std::fs::read(FONT)
        .map_err(|e| format!("{FONT}: {e} (apt-get install fonts-dejavu-core)"))?;
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(bytes.into_boxed_slice()),
    )
    .map_err(|_| "the font does not load".to_owned())
}
