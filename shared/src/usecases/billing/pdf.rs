//! The overage export as a PDF: one page per customer (more when its lines
//! do not fit), with its line items and its total per currency. Built with
//! `pdf-writer` and the standard Helvetica fonts (nothing embedded).

use super::render::{by_customer, totals};
use super::{Export, ExportRow};
use crate::error::Error;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const MARGIN: f32 = 50.0;
const LINE: f32 = 14.0;
/// Table lines that fit below a page's heading.
const LINES_PER_PAGE: usize = 40;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// Columns of the line-item table: x positions and headings.
const COLUMNS: [(f32, &str); 6] = [
    (MARGIN, "Product"),
    (MARGIN + 95.0, "Period"),
    (MARGIN + 145.0, "Description"),
    (MARGIN + 330.0, "Qty"),
    (MARGIN + 370.0, "Unit price"),
    (MARGIN + 440.0, "Amount"),
];

/// One printed line of a customer's table.
struct Line {
    cells: [String; 6],
}

fn lines_of(rows: &[&ExportRow]) -> Vec<Line> {
    let mut out = Vec::new();
    for r in rows {
        let t = &r.license.commercial;
        let period = r.bill.period.to_string();
        let cur = t.currency.code();
        if r.bill.commit_fee.minor != 0 {
            out.push(Line {
                cells: [
                    r.product_name.clone(),
                    period.clone(),
                    format!("Commit: {} seats", t.commit_qty),
                    "1".into(),
                    format!("{} {cur}", r.bill.commit_fee.decimal()),
                    format!("{} {cur}", r.bill.commit_fee.decimal()),
                ],
            });
        }
        out.push(Line {
            cells: [
                r.product_name.clone(),
                period.clone(),
                format!("Overage checkouts beyond {}", t.commit_qty),
                r.bill.overage_checkouts.to_string(),
                format!("{} {cur}", t.unit_price().decimal()),
                format!("{} {cur}", r.bill.checkout_cost.decimal()),
            ],
        });
        for m in r.bill.metered_overage() {
            out.push(Line {
                cells: [
                    r.product_name.clone(),
                    period.clone(),
                    m.description(),
                    m.units.to_string(),
                    format!("{} {cur}", m.unit_price.decimal()),
                    format!("{} {cur}", m.cost.decimal()),
                ],
            });
        }
    }
    out
}

/// Text as the standard fonts' WinAnsi encoding shows it: Latin-1 as is,
/// anything else as `?` (names are shown, never interpreted).
fn text(s: &str, max_chars: usize) -> Vec<u8> {
    s.chars()
        .take(max_chars)
        .map(|c| match u32::from(c) {
            v @ 0x20..=0x7e | v @ 0xa0..=0xff => v as u8,
            _ => b'?',
        })
        .collect()
}

struct Writer {
    content: Content,
    y: f32,
}

impl Writer {
    fn new() -> Writer {
        Writer {
            content: Content::new(),
            y: HEIGHT - MARGIN,
        }
    }

    fn at(&mut self, x: f32, font: Name<'static>, size: f32, s: &str, max: usize) {
        self.content.begin_text();
        self.content.set_font(font, size);
        self.content.next_line(x, self.y);
        self.content.show(Str(&text(s, max)));
        self.content.end_text();
    }

    fn line(&mut self, font: Name<'static>, size: f32, s: &str) {
        self.at(MARGIN, font, size, s, 120);
        self.y -= LINE + (size - 10.0).max(0.0);
    }

    fn row(&mut self, font: Name<'static>, cells: &[String; 6]) {
        let widths = [16, 8, 32, 6, 12, 16];
        for (i, (x, _)) in COLUMNS.iter().enumerate() {
            self.at(*x, font, 9.0, &cells[i], widths[i]);
        }
        self.y -= LINE;
    }

    fn rule(&mut self) {
        self.content
            .move_to(MARGIN, self.y + LINE - 3.0)
            .line_to(WIDTH - MARGIN, self.y + LINE - 3.0)
            .stroke();
        self.y -= 4.0;
    }
}

/// The export as a PDF document.
pub fn to_pdf(e: &Export) -> Result<Vec<u8>, Error> {
    let heading = format!(
        "Vendor {}  -  billing periods {} to {}",
        e.vendor_id, e.start, e.end
    );
    let mut pages: Vec<Vec<u8>> = Vec::new();
    let customers = by_customer(&e.rows);
    for (crm, name, rows) in &customers {
        let lines = lines_of(rows);
        let owned: Vec<ExportRow> = rows.iter().map(|r| (*r).clone()).collect();
        let sums = totals(&owned)?;
        let chunks: Vec<&[Line]> = if lines.is_empty() {
            vec![&[]]
        } else {
            lines.chunks(LINES_PER_PAGE).collect()
        };
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let mut w = Writer::new();
            w.line(BOLD, 16.0, "Overage and commit statement");
            w.line(REGULAR, 10.0, &heading);
            w.y -= 6.0;
            let cont = if i > 0 { " (continued)" } else { "" };
            w.line(BOLD, 12.0, &format!("Customer: {name}{cont}"));
            if !crm.is_empty() {
                w.line(REGULAR, 10.0, &format!("CRM account: {crm}"));
            }
            w.y -= 6.0;
            let head = COLUMNS.map(|(_, h)| h.to_string());
            w.row(BOLD, &head);
            w.rule();
            for l in chunk {
                w.row(REGULAR, &l.cells);
            }
            if i == last {
                w.rule();
                for (cur, t) in &sums {
                    let s = format!("Total ({cur}): {} {cur}", t.billable.decimal());
                    w.line(BOLD, 11.0, &s);
                    let detail = format!(
                        "of which commit {} {cur}, overage {} {cur}",
                        t.commit.decimal(),
                        t.overage.decimal()
                    );
                    w.line(REGULAR, 9.0, &detail);
                }
            }
            pages.push(w.content.finish().to_vec());
        }
    }
    if pages.is_empty() {
        let mut w = Writer::new();
        w.line(BOLD, 16.0, "Overage and commit statement");
        w.line(REGULAR, 10.0, &heading);
        w.line(
            REGULAR,
            10.0,
            "No license with commercial terms in this range.",
        );
        pages.push(w.content.finish().to_vec());
    }
    Ok(document(&pages))
}

/// A PDF of these page contents.
fn document(pages: &[Vec<u8>]) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let first = 5;
    let page_ref = |i: usize| Ref::new(first + 2 * i as i32);
    let content_ref = |i: usize| Ref::new(first + 2 * i as i32 + 1);
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids((0..pages.len()).map(page_ref))
        .count(pages.len() as i32);
    for (i, content) in pages.iter().enumerate() {
        let mut page = pdf.page(page_ref(i));
        page.media_box(Rect::new(0.0, 0.0, WIDTH, HEIGHT))
            .parent(tree)
            .contents(content_ref(i));
        let mut res = page.resources();
        res.fonts().pair(REGULAR, regular).pair(BOLD, bold);
        res.finish();
        page.finish();
        pdf.stream(content_ref(i), content);
    }
    for (id, name) in [(regular, "Helvetica"), (bold, "Helvetica-Bold")] {
        pdf.type1_font(id)
            .base_font(Name(name.as_bytes()))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::billing::{BilledLicense, CommercialTerms, Period};
    use crate::ids::{Email, LicenseId, LicenseKey, ProductCode, TenantId};

    fn row(email: &str, crm: &str, overage: u64) -> ExportRow {
        let t = TenantId::parse("acme").unwrap();
        let commercial: CommercialTerms = serde_json::from_value(serde_json::json!({
            "currency": "EUR", "commit_qty": 5, "commit_fee_minor": 500000,
            "billing_cycle": "monthly", "overage_unit_price_minor": 50000,
            "contract": { "start_date": "2026-01-01", "end_date": "2026-12-31" },
            "crm_account_id": crm
        }))
        .unwrap();
        let p = Period::parse("2026-12").unwrap();
        ExportRow {
            bill: commercial.bill(p, overage, &[]).unwrap(),
            license: BilledLicense {
                license_id: LicenseId::derive(&t, &LicenseKey::generate()),
                product: ProductCode::parse("cad").unwrap(),
                customer_email: Email::normalise(email).unwrap(),
                commercial,
                organization: None,
            },
            product_name: "CAD Suite".into(),
        }
    }

    #[test]
    fn one_page_per_customer() {
        let day = |s| crate::domain::billing::parse_day("", s).unwrap();
        let e = Export {
            vendor_id: "acme".into(),
            start: day("2026-12-01"),
            end: day("2026-12-31"),
            rows: vec![row("a@x.example", "A", 15), row("b@x.example", "B", 0)],
            next_cursor: None,
        };
        let pdf = to_pdf(&e).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/Count 2"), "two customers, two pages");
        assert!(text.contains("/Helvetica-Bold"));
        if let Ok(path) = std::env::var("BILLING_PDF_OUT") {
            std::fs::write(path, &pdf).unwrap();
        }
    }
}
