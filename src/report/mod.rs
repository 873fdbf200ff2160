//! 通报: the periodic bulletin of figures, as text, HTML and a PNG chart.

pub mod chart;
