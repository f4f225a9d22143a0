//! Server-rendered SVG charts (no script: the CSP allows none).

use maud::{html, Markup};

/// A bar per day (oldest first), with the largest value and the first and
/// last day labelled.
pub fn daily(days: &[(String, u64)]) -> Markup {
    const W: u64 = 300;
    const H: u64 = 80;
    let max = days.iter().map(|(_, v)| *v).max().unwrap_or(0);
    let n = days.len().max(1) as u64;
    let slot = W / n;
    let total: u64 = days.iter().map(|(_, v)| *v).sum();
    html! {
        figure.chart {
            svg viewBox={"0 0 " (W) " " (H + 14)} role="img"
                aria-label={"usage per day: " (total) " in " (days.len()) " days, at most " (max)} {
                line x1="0" y1=(H) x2=(W) y2=(H) stroke="#9ca3af" stroke-width="1" {}
                @for (i, (day, v)) in days.iter().enumerate() {
                    @let h = v.saturating_mul(H - 4).checked_div(max).unwrap_or(0);
                    rect x=(i as u64 * slot + 1) y=(H - h) width=(slot.saturating_sub(2).max(1))
                        height=(h) fill="#2563eb" {
                        title { (day) ": " (v) }
                    }
                }
                @if let (Some((first, _)), Some((last, _))) = (days.first(), days.last()) {
                    text x="0" y=(H + 12) font-size="9" fill="#6b7280" { (first) }
                    text x=(W) y=(H + 12) font-size="9" fill="#6b7280" text-anchor="end" { (last) }
                }
                text x="2" y="9" font-size="9" fill="#6b7280" { "max " (max) }
            }
            figcaption.muted { (total) " in the last " (days.len()) " days" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bar_per_day_scaled_to_the_largest() {
        let days: Vec<_> = (1..=3).map(|d| (format!("2026-01-0{d}"), d * 10)).collect();
        let svg = daily(&days).into_string();
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("max 30"));
        assert!(svg.contains("60 in the last 3 days"));
        assert!(daily(&[]).into_string().contains("0 in the last 0 days"));
    }
}
