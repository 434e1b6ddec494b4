//! The charts of report.html, drawn by plotters' SVG backend: horizontal
//! bars for counts, columns for failures over time. Owns only drawing; the
//! counts are given. Labels are report vocabulary (verdict and class
//! names), never wire text.

use plotters::coord::Shift;
use plotters::prelude::*;

const BAR: RGBColor = RGBColor(52, 101, 164);
const FAIL: RGBColor = RGBColor(192, 57, 43);

/// A horizontal bar chart of `(label, count)` as an SVG document string;
/// `None` when there is nothing to count.
pub fn bars(title: &str, items: &[(String, u64)]) -> Option<String> {
    if items.is_empty() {
        return None;
    }
    let mut s = String::new();
    let h = 60 + 24 * items.len() as u32;
    {
        let root = SVGBackend::with_string(&mut s, (720, h)).into_drawing_area();
        draw_bars(&root, title, items).ok()?;
        root.present().ok()?;
    }
    Some(s)
}

fn draw_bars(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    items: &[(String, u64)],
) -> Result<(), Box<dyn std::error::Error>> {
    root.fill(&WHITE)?;
    let max = items.iter().map(|x| x.1).max().unwrap_or(1).max(1);
    let n = items.len();
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 15))
        .margin(6)
        .x_label_area_size(22)
        .y_label_area_size(300)
        .build_cartesian_2d(0u64..max + max / 8 + 1, (0..n).into_segmented())?;
    let label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => items.get(*i).map(|x| x.0.clone()).unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&label)
        .x_labels(6)
        .draw()?;
    chart.draw_series(items.iter().enumerate().map(|(i, (_, c))| {
        Rectangle::new(
            [
                (0, SegmentValue::Exact(i)),
                (*c, SegmentValue::Exact(i + 1)),
            ],
            BAR.filled(),
        )
    }))?;
    chart.draw_series(items.iter().enumerate().map(|(i, (_, c))| {
        Text::new(
            c.to_string(),
            (*c, SegmentValue::CenterOf(i)),
            ("sans-serif", 12).into_font(),
        )
    }))?;
    Ok(())
}

/// Failures per bucket over time as an SVG document string: `buckets` are
/// (bucket start as a label, count), in time order.
pub fn timeline(title: &str, buckets: &[(String, u64)]) -> Option<String> {
    if buckets.is_empty() {
        return None;
    }
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, (900, 260)).into_drawing_area();
        draw_timeline(&root, title, buckets).ok()?;
        root.present().ok()?;
    }
    Some(s)
}

fn draw_timeline(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    buckets: &[(String, u64)],
) -> Result<(), Box<dyn std::error::Error>> {
    root.fill(&WHITE)?;
    let max = buckets.iter().map(|x| x.1).max().unwrap_or(1).max(1);
    let n = buckets.len();
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 15))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(44)
        .build_cartesian_2d((0..n).into_segmented(), 0u64..max + max / 8 + 1)?;
    let label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => buckets.get(*i).map(|x| x.0.clone()).unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n.min(12))
        .x_label_formatter(&label)
        .y_labels(5)
        .draw()?;
    chart.draw_series(buckets.iter().enumerate().map(|(i, (_, c))| {
        Rectangle::new(
            [
                (SegmentValue::Exact(i), 0),
                (SegmentValue::Exact(i + 1), *c),
            ],
            FAIL.filled(),
        )
    }))?;
    Ok(())
}

/// Bucket failure counts per minute (`minutes`: minute since the epoch →
/// count) into per-minute buckets when the span is at most two hours, else
/// per-hour ones; every bucket of the span is listed, empty ones too
/// (at most 48 hourly buckets are drawn per day... the span decides).
pub fn buckets(minutes: &std::collections::BTreeMap<i64, u64>) -> (String, Vec<(String, u64)>) {
    let (Some((&first, _)), Some((&last, _))) =
        (minutes.first_key_value(), minutes.last_key_value())
    else {
        return ("minute".into(), Vec::new());
    };
    let per_hour = last - first > 120;
    let unit = if per_hour { 60 } else { 1 };
    let (b0, b1) = (first.div_euclid(unit), last.div_euclid(unit));
    let mut out: Vec<(String, u64)> = (b0..=b1)
        .map(|b| (bucket_label(b * unit, per_hour), 0))
        .collect();
    for (&m, &c) in minutes {
        out[(m.div_euclid(unit) - b0) as usize].1 += c;
    }
    (if per_hour { "hour" } else { "minute" }.into(), out)
}

/// `HH:MM` UTC of a minute since the epoch (with the date for hours).
fn bucket_label(minute: i64, with_date: bool) -> String {
    let t = crate::capture::format_rfc3339_micros(minute * 60_000_000_000);
    if with_date {
        format!("{} {}", &t[5..10], &t[11..16])
    } else {
        t[11..16].to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_by_minute_or_hour() {
        let mut m = std::collections::BTreeMap::new();
        m.insert(10, 2);
        m.insert(12, 1);
        let (unit, b) = buckets(&m);
        assert_eq!(unit, "minute");
        assert_eq!(b.iter().map(|x| x.1).collect::<Vec<_>>(), [2, 0, 1]);
        assert_eq!(b[0].0, "00:10");
        m.insert(10 + 60 * 5, 4);
        let (unit, b) = buckets(&m);
        assert_eq!(unit, "hour");
        assert_eq!(b.len(), 6);
        assert_eq!(b[0].1, 3);
        assert_eq!(b[5].1, 4);
    }

    #[test]
    fn bar_chart_is_svg_with_its_labels() {
        let s = bars(
            "verdicts",
            &[("NO_RETRY".into(), 3), ("RETRY_LOOP".into(), 1)],
        )
        .unwrap();
        assert!(s.starts_with("<svg"), "{s}");
        assert!(s.contains("NO_RETRY") && s.contains("RETRY_LOOP"));
        assert!(bars("x", &[]).is_none());
    }
}
