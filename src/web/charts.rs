//! Charts for the leader dashboard, drawn as inline SVG on the server: pure
//! functions from numbers to markup, so the page needs no script and no
//! chart library, and prints and scales like text.
//!
//! Every chart is one `<svg>` with a `viewBox` (it stretches to its box),
//! `role="img"` and a `<title>`; every label goes through [`esc`].

use std::fmt::Write;

/// Series colours, in order (distinguishable in greyscale too).
pub const PALETTE: [&str; 6] = [
    "#b71c1c", "#1456b8", "#1b7f3b", "#a15c00", "#6b3fa0", "#00838f",
];

/// Escapes text for SVG/XML content and attribute values (the bulletin's
/// escaper: the same five characters).
pub use crate::report::escape as esc;

/// A rate as the page prints it: `87.5%`, or `—` when undefined.
pub fn pct(rate: Option<f64>) -> String {
    rate.map(|r| format!("{:.1}%", r * 100.0))
        .unwrap_or_else(|| "—".into())
}

/// The smallest "nice" number (1, 2, 2.5 or 5 × 10ⁿ) at or above `v`; at
/// least 1, so an axis of zeros still has a scale.
pub fn nice_max(v: i64) -> i64 {
    if v <= 1 {
        return 1;
    }
    let mut magnitude = 1i64;
    while magnitude.saturating_mul(10) <= v {
        magnitude *= 10;
    }
    for step in [10, 20, 25, 50, 100] {
        let candidate = magnitude.saturating_mul(step) / 10;
        if candidate >= v {
            return candidate;
        }
    }
    magnitude.saturating_mul(10)
}

fn open(out: &mut String, title: &str, width: u32, height: u32) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" \
         width=\"100%\" role=\"img\" aria-label=\"{t}\" class=\"chart\" \
         font-family=\"sans-serif\" font-size=\"12\"><title>{t}</title>",
        t = esc(title)
    );
}

fn legend(out: &mut String, series: &[&str], x0: f64, y: f64) {
    let mut x = x0;
    for (i, name) in series.iter().enumerate() {
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{y:.1}\">{}</text>",
            y - 9.0,
            PALETTE[i % PALETTE.len()],
            x + 14.0,
            esc(name)
        );
        // CJK glyphs are about one em wide; ASCII about half.
        let w: f64 = name
            .chars()
            .map(|c| if c.is_ascii() { 7.0 } else { 12.0 })
            .sum();
        x += 14.0 + w + 16.0;
    }
}

fn empty(title: &str) -> String {
    let mut out = String::new();
    open(&mut out, title, 600, 60);
    out.push_str(
        "<text x=\"300\" y=\"35\" text-anchor=\"middle\" fill=\"#646a73\">本期无数据</text></svg>",
    );
    out
}

/// One row of a horizontal bar chart: a label and up to two rates in
/// `0.0..=1.0` (`None`: undefined, drawn as "—" without a bar).
#[derive(Debug, Clone, PartialEq)]
pub struct HBar {
    pub label: String,
    pub values: Vec<Option<f64>>,
}

/// Horizontal grouped bars of rates, one row per label, 0–100 % scale;
/// `series` names the bars of a row (legend at the top).
pub fn hbar_chart(title: &str, series: &[&str], rows: &[HBar]) -> String {
    if rows.is_empty() {
        return empty(title);
    }
    const WIDTH: f64 = 640.0;
    const LABEL: f64 = 150.0;
    const PLOT: f64 = 400.0;
    const BAR: f64 = 9.0;
    const TOP: f64 = 30.0;
    let n = series.len().max(1);
    let row_h = BAR * n as f64 + 8.0;
    let height = TOP + row_h * rows.len() as f64 + 22.0;
    let mut out = String::new();
    open(&mut out, title, WIDTH as u32, height.ceil() as u32);
    legend(&mut out, series, LABEL, 16.0);
    // Grid at 0, 25, 50, 75, 100 %.
    let bottom = TOP + row_h * rows.len() as f64;
    for q in 0..=4 {
        let x = LABEL + PLOT * q as f64 / 4.0;
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{TOP:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"#dee0e3\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#646a73\">{}%</text>",
            bottom + 14.0,
            q * 25
        );
    }
    for (i, row) in rows.iter().enumerate() {
        let y0 = TOP + row_h * i as f64 + 4.0;
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LABEL - 6.0,
            y0 + BAR * n as f64 / 2.0 + 4.0,
            esc(&row.label)
        );
        for s in 0..n {
            let y = y0 + BAR * s as f64;
            let v = row.values.get(s).copied().flatten();
            let w = v.map(|r| r.clamp(0.0, 1.0) * PLOT).unwrap_or(0.0);
            if v.is_some() {
                let _ = write!(
                    out,
                    "<rect x=\"{LABEL:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{} {}</title></rect>",
                    BAR - 1.0,
                    PALETTE[s % PALETTE.len()],
                    esc(series.get(s).copied().unwrap_or_default()),
                    pct(v)
                );
            }
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\">{}</text>",
                LABEL + w + 4.0,
                y + BAR - 1.5,
                pct(v)
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// One column of a stacked column chart: a label and one count per series.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub label: String,
    pub values: Vec<i64>,
}

/// Stacked columns of counts (e.g. weekly intake, stacked by channel),
/// labelled every few columns so labels never overlap.
pub fn stacked_columns(title: &str, series: &[&str], columns: &[Column]) -> String {
    if columns.is_empty() {
        return empty(title);
    }
    const WIDTH: f64 = 640.0;
    const HEIGHT: f64 = 240.0;
    const LEFT: f64 = 48.0;
    const RIGHT: f64 = 8.0;
    const TOP: f64 = 30.0;
    const BOTTOM: f64 = 24.0;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let total = |c: &Column| c.values.iter().map(|v| (*v).max(0)).sum::<i64>();
    let max = nice_max(columns.iter().map(total).max().unwrap_or(0));
    let mut out = String::new();
    open(&mut out, title, WIDTH as u32, HEIGHT as u32);
    legend(&mut out, series, LEFT, 16.0);
    y_axis(&mut out, max, LEFT, WIDTH - RIGHT, TOP, plot_h);
    let slot = plot_w / columns.len() as f64;
    let bar = (slot * 0.75).max(1.0);
    let every = label_every(columns.len(), plot_w, 48.0);
    for (i, c) in columns.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = TOP + plot_h;
        for (s, v) in c.values.iter().enumerate() {
            let h = (*v).max(0) as f64 / max as f64 * plot_h;
            if h <= 0.0 {
                continue;
            }
            y -= h;
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{} {} {}</title></rect>",
                PALETTE[s % PALETTE.len()],
                esc(&c.label),
                esc(series.get(s).copied().unwrap_or_default()),
                v
            );
        }
        if i % every == 0 {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#646a73\" font-size=\"10\">{}</text>",
                x + bar / 2.0,
                HEIGHT - 8.0,
                esc(&c.label)
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// One point of a line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub label: String,
    pub value: i64,
}

/// A line of counts over time (e.g. the overdue backlog at each day's end),
/// with a dot per point when there are few enough to see them.
pub fn line_chart(title: &str, series: &str, points: &[Point]) -> String {
    if points.is_empty() {
        return empty(title);
    }
    const WIDTH: f64 = 640.0;
    const HEIGHT: f64 = 220.0;
    const LEFT: f64 = 48.0;
    const RIGHT: f64 = 12.0;
    const TOP: f64 = 30.0;
    const BOTTOM: f64 = 24.0;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let max = nice_max(points.iter().map(|p| p.value).max().unwrap_or(0));
    let mut out = String::new();
    open(&mut out, title, WIDTH as u32, HEIGHT as u32);
    legend(&mut out, &[series], LEFT, 16.0);
    y_axis(&mut out, max, LEFT, WIDTH - RIGHT, TOP, plot_h);
    let step = if points.len() > 1 {
        plot_w / (points.len() - 1) as f64
    } else {
        0.0
    };
    let xy = |i: usize, v: i64| {
        let x = LEFT
            + if points.len() > 1 {
                step * i as f64
            } else {
                plot_w / 2.0
            };
        let y = TOP + plot_h - v.max(0) as f64 / max as f64 * plot_h;
        (x, y)
    };
    let path: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (x, y) = xy(i, p.value);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let _ = write!(
        out,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
        path.join(" "),
        PALETTE[0]
    );
    let dots = points.len() <= 60;
    let every = label_every(points.len(), plot_w, 56.0);
    for (i, p) in points.iter().enumerate() {
        let (x, y) = xy(i, p.value);
        if dots {
            let _ = write!(
                out,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"{}\"><title>{} {}</title></circle>",
                PALETTE[0],
                esc(&p.label),
                p.value
            );
        }
        if i % every == 0 {
            let _ = write!(
                out,
                "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#646a73\" font-size=\"10\">{}</text>",
                HEIGHT - 8.0,
                esc(&p.label)
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// Horizontal grid lines with their counts at 0, ¼, ½, ¾ and all of `max`.
fn y_axis(out: &mut String, max: i64, left: f64, right: f64, top: f64, plot_h: f64) {
    for q in 0..=4 {
        let y = top + plot_h - plot_h * q as f64 / 4.0;
        let v = max as f64 * q as f64 / 4.0;
        let label = if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        };
        let _ = write!(
            out,
            "<line x1=\"{left:.1}\" y1=\"{y:.1}\" x2=\"{right:.1}\" y2=\"{y:.1}\" stroke=\"#dee0e3\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#646a73\" font-size=\"10\">{label}</text>",
            left - 4.0,
            y + 3.5
        );
    }
}

/// Label every n-th of `count` slots so labels `min_gap` wide never overlap.
fn label_every(count: usize, width: f64, min_gap: f64) -> usize {
    if count == 0 {
        return 1;
    }
    let slot = width / count as f64;
    ((min_gap / slot).ceil() as usize).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(hay: &str, needle: &str) -> usize {
        hay.matches(needle).count()
    }

    #[test]
    fn nice_maxima_round_up_to_one_two_two_and_a_half_or_five() {
        let cases = [
            (0, 1),
            (1, 1),
            (3, 5),
            (9, 10),
            (11, 20),
            (21, 25),
            (26, 50),
            (51, 100),
            (100, 100),
            (101, 200),
            (2_400, 2_500),
            (730_000, 1_000_000),
        ];
        for (v, want) in cases {
            let got = nice_max(v);
            assert_eq!(got, want, "nice_max({v})");
            assert!(got >= v);
        }
    }

    #[test]
    fn labels_are_escaped() {
        let svg = hbar_chart(
            "a<b>&\"c\"",
            &["x<y"],
            &[HBar {
                label: "<script>".into(),
                values: vec![Some(0.5)],
            }],
        );
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("a&lt;b&gt;&amp;&quot;c&quot;"));
        assert!(svg.contains("x&lt;y"));
    }

    #[test]
    fn bar_widths_follow_the_rates_and_undefined_rates_have_no_bar() {
        let rows = [
            HBar {
                label: "水务局".into(),
                values: vec![Some(1.0), Some(0.5)],
            },
            HBar {
                label: "城管局".into(),
                values: vec![None, Some(0.25)],
            },
        ];
        let svg = hbar_chart("按期办结率与满意率", &["按期办结率", "满意率"], &rows);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        // Two legend swatches plus three bars.
        assert_eq!(count(&svg, "<rect"), 2 + 3);
        assert!(svg.contains("width=\"400.0\""), "100 % is the full plot");
        assert!(svg.contains("width=\"200.0\""), "50 %");
        assert!(svg.contains("width=\"100.0\""), "25 %");
        assert!(svg.contains(">100.0%<") && svg.contains(">50.0%<") && svg.contains(">—<"));
        assert!(svg.contains("水务局") && svg.contains("城管局"));
        // Out-of-range rates are clamped, not drawn outside the plot.
        let svg = hbar_chart(
            "t",
            &["s"],
            &[HBar {
                label: "x".into(),
                values: vec![Some(1.7)],
            }],
        );
        assert!(svg.contains("width=\"400.0\""));
    }

    #[test]
    fn stacked_columns_stack_each_series_and_scale_to_the_tallest_column() {
        let cols = [
            Column {
                label: "11-02".into(),
                values: vec![30, 10, 0],
            },
            Column {
                label: "11-09".into(),
                values: vec![50, 25, 25],
            },
        ];
        let svg = stacked_columns("每周受理量", &["热线", "信箱", "问政"], &cols);
        // Three legend swatches, then 2 + 3 non-zero segments.
        assert_eq!(count(&svg, "<rect"), 3 + 5);
        // The tallest column (100) fills the plot (240 - 30 - 24 = 186).
        let heights: Vec<f64> = svg
            .split("height=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().parse().unwrap())
            .collect();
        let tallest: f64 = heights[3 + 2..].iter().sum();
        assert!((tallest - 186.0).abs() < 0.5, "{heights:?}");
        assert!(svg.contains("<title>11-09 信箱 25</title>"));
        assert!(svg.contains(">100<"), "the axis reaches the nice maximum");
    }

    #[test]
    fn a_line_has_one_vertex_per_point_and_labels_do_not_crowd() {
        let points: Vec<Point> = (0..365)
            .map(|i| Point {
                label: format!("d{i}"),
                value: i,
            })
            .collect();
        let svg = line_chart("超期未办", "超期未办件数", &points);
        let poly = svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(poly.split(' ').count(), 365);
        assert_eq!(count(&svg, "<circle"), 0, "no dots on a dense line");
        let labels = count(&svg, "font-size=\"10\">d");
        assert!((5..=15).contains(&labels), "{labels} x labels");
        let few = line_chart("t", "s", &points[..4]);
        assert_eq!(count(&few, "<circle"), 4);
    }

    #[test]
    fn empty_data_says_so() {
        for svg in [
            hbar_chart("t", &["a"], &[]),
            stacked_columns("t", &["a"], &[]),
            line_chart("t", "a", &[]),
        ] {
            assert!(svg.contains("本期无数据") && svg.ends_with("</svg>"));
        }
        // A single point or all-zero columns still draw a scale.
        assert!(
            line_chart(
                "t",
                "a",
                &[Point {
                    label: "x".into(),
                    value: 0
                }]
            )
            .contains(">1<")
        );
    }

    #[test]
    fn rates_print_with_one_decimal_or_a_dash() {
        assert_eq!(pct(Some(0.8756)), "87.6%");
        assert_eq!(pct(Some(1.0)), "100.0%");
        assert_eq!(pct(None), "—");
    }
}
