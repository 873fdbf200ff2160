//! 通报: the bulletin of a period's figures — totals with the change against
//! the previous period of the same length, departments ranked by 按期办结率
//! and 满意率 with their counts, and the most overdue open tickets — as
//! plain text (also the e-mail), HTML, and a PNG chart.

pub mod chart;

use std::fmt::Write;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::domain::calendar::city_tz;
use crate::domain::figures::{Figures, GroupBy, Period, Rate, midnight};
use crate::domain::notify::Audience;
use crate::store::entities::ticket;
use crate::store::escalations::{Directory, OutboxDraft};
use crate::store::stats::FigureGroup;
use crate::store::{Store, StoreResult};

/// An open ticket past its active deadline.
#[derive(Debug, Clone)]
pub struct Overdue {
    pub ticket_no: String,
    pub title: String,
    pub department: String,
    pub due: DateTime<Utc>,
    pub clock: &'static str,
}

/// Everything the bulletin shows.
#[derive(Debug, Clone)]
pub struct Bulletin {
    pub period: Period,
    pub previous: Period,
    pub city: Figures,
    pub before: Figures,
    /// Ranked by 按期办结率, then 满意率 (undefined rates last).
    pub departments: Vec<FigureGroup>,
    pub overdue: Vec<Overdue>,
    /// The instant the overdue list is taken at: the period's end, or now.
    pub as_of: DateTime<Utc>,
}

fn cmp_rate(a: &Rate, b: &Rate) -> std::cmp::Ordering {
    // Higher first; undefined last.
    match (a.rate, b.rate) {
        (Some(x), Some(y)) => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

/// Orders departments as the bulletin and the dashboard rank them: by
/// 按期办结率, then 满意率 (higher first, undefined last), then code.
pub fn rank_departments(departments: &mut [FigureGroup]) {
    departments.sort_by(|a, b| {
        cmp_rate(&a.figures.on_time_rate, &b.figures.on_time_rate)
            .then_with(|| cmp_rate(&a.figures.satisfaction_rate, &b.figures.satisfaction_rate))
            .then_with(|| a.key.cmp(&b.key))
    });
}

/// How many overdue tickets the bulletin lists.
pub const OVERDUE_LISTED: u64 = 10;

pub async fn build(store: &Store, period: Period, basically_counts: bool) -> StoreResult<Bulletin> {
    let previous = period.previous();
    let city = store.figures(period, None, None, basically_counts).await?;
    let before = store
        .figures(previous, None, None, basically_counts)
        .await?;
    let mut departments: Vec<FigureGroup> = store
        .figures(period, Some(GroupBy::Department), None, basically_counts)
        .await?
        .into_iter()
        .filter(|g| !g.key.is_empty())
        .collect();
    rank_departments(&mut departments);

    let as_of = midnight(period.to).min(crate::store::now());
    // The longest overdue of each clock, each by its own deadline.
    let mut late = Vec::new();
    for (state, column) in [
        ("dispatched", ticket::Column::SignDueAt),
        ("in_progress", ticket::Column::ReplyDueAt),
    ] {
        late.extend(
            ticket::Entity::find()
                .filter(ticket::Column::State.eq(state))
                .filter(column.lt(as_of))
                .order_by_asc(column)
                .limit(OVERDUE_LISTED)
                .all(&store.db)
                .await?,
        );
    }
    let dir = Directory::load(store).await?;
    let mut overdue: Vec<Overdue> = late
        .iter()
        .filter_map(|t| {
            let (clock, due) = if t.state == "dispatched" {
                ("签收", t.sign_due_at?)
            } else {
                ("答复", t.reply_due_at?)
            };
            Some(Overdue {
                ticket_no: t.ticket_no.clone(),
                title: t.title.clone(),
                department: dir
                    .department_name(t.department.as_deref().unwrap_or(""))
                    .to_owned(),
                due,
                clock,
            })
        })
        .collect();
    overdue.sort_by_key(|o| o.due);
    overdue.truncate(OVERDUE_LISTED as usize);

    let first = |v: Vec<FigureGroup>| v.into_iter().next().map(|g| g.figures);
    Ok(Bulletin {
        period,
        previous,
        city: first(city).unwrap_or_else(|| Figures::from_counts(&Default::default(), 0, true)),
        before: first(before).unwrap_or_else(|| Figures::from_counts(&Default::default(), 0, true)),
        departments,
        overdue,
        as_of,
    })
}

fn pct(r: &Rate) -> String {
    r.rate
        .map(|x| format!("{:.1}%", x * 100.0))
        .unwrap_or_else(|| "—".into())
}

fn change_points(now: &Rate, before: &Rate) -> String {
    match (now.rate, before.rate) {
        (Some(a), Some(b)) => format!("{:+.1}个百分点", (a - b) * 100.0),
        _ => "无可比数据".into(),
    }
}

fn change_count(now: i64, before: i64) -> String {
    if before == 0 {
        return "无可比数据".into();
    }
    format!("{:+.1}%", (now - before) as f64 / before as f64 * 100.0)
}

fn rates(f: &Figures) -> [(&'static str, &Rate); 9] {
    [
        ("直办率", &f.direct_answer_rate),
        ("按时签收率", &f.sign_on_time_rate),
        ("办结率", &f.closure_rate),
        ("按期办结率", &f.on_time_rate),
        ("解决率", &f.resolution_rate),
        ("满意率", &f.satisfaction_rate),
        ("退单率", &f.return_rate),
        ("重办率", &f.rework_rate),
        ("首派准确率", &f.first_dispatch_accuracy),
    ]
}

fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&city_tz())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn last_day(p: &Period) -> chrono::NaiveDate {
    p.to.pred_opt().unwrap_or(p.to)
}

/// 满意率 rank of each department (1 = best), by key.
fn satisfaction_ranks(b: &Bulletin) -> std::collections::HashMap<&str, usize> {
    let mut by: Vec<&FigureGroup> = b.departments.iter().collect();
    by.sort_by(|a, b| cmp_rate(&a.figures.satisfaction_rate, &b.figures.satisfaction_rate));
    by.iter()
        .enumerate()
        .map(|(i, g)| (g.key.as_str(), i + 1))
        .collect()
}

impl Bulletin {
    pub fn title(&self) -> String {
        format!(
            "12345热线工作通报（{} 至 {}）",
            self.period.from,
            last_day(&self.period)
        )
    }

    /// The bulletin as plain text: what is printed and what is mailed.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let c = &self.city;
        let _ = writeln!(s, "{}", self.title());
        let _ = writeln!(
            s,
            "统计周期：{} 至 {}（共{}天）；对比上期：{} 至 {}",
            self.period.from,
            last_day(&self.period),
            self.period.days(),
            self.previous.from,
            last_day(&self.previous)
        );
        let _ = writeln!(s, "\n一、总体情况");
        let _ = writeln!(
            s,
            "受理量 {} 件（上期 {} 件，{}）",
            c.intake.numerator,
            self.before.intake.numerator,
            change_count(c.intake.numerator, self.before.intake.numerator)
        );
        for ((name, now), (_, before)) in rates(c).into_iter().zip(rates(&self.before)) {
            let _ = writeln!(
                s,
                "{name} {}（{}/{}），上期 {}，{}",
                pct(now),
                now.numerator,
                now.denominator,
                pct(before),
                change_points(now, before)
            );
        }
        let _ = writeln!(
            s,
            "期末超期未办 {} 件（上期末 {} 件）",
            c.overdue_open.numerator, self.before.overdue_open.numerator
        );

        let _ = writeln!(s, "\n二、承办单位排名（按按期办结率，其次满意率）");
        let _ = writeln!(
            s,
            "{:<4}{:<20}{:>8}{:>8}{:>10}{:>8}{:>8}{:>8}{:>10}",
            "排名",
            "承办单位",
            "应办结",
            "按期",
            "按期办结率",
            "回访",
            "满意",
            "满意率",
            "满意率排名"
        );
        let ranks = satisfaction_ranks(self);
        for (i, g) in self.departments.iter().enumerate() {
            let f = &g.figures;
            let _ = writeln!(
                s,
                "{:<4}{:<20}{:>8}{:>8}{:>10}{:>8}{:>8}{:>8}{:>10}",
                i + 1,
                g.name,
                f.on_time_rate.denominator,
                f.on_time_rate.numerator,
                pct(&f.on_time_rate),
                f.satisfaction_rate.denominator,
                f.satisfaction_rate.numerator,
                pct(&f.satisfaction_rate),
                ranks.get(g.key.as_str()).copied().unwrap_or(0)
            );
        }
        if self.departments.is_empty() {
            let _ = writeln!(s, "（本期无承办单位数据）");
        }

        let _ = writeln!(
            s,
            "\n三、超期未办工单（截至 {}，超期最久的前{}件）",
            local(self.as_of),
            OVERDUE_LISTED
        );
        for o in &self.overdue {
            let _ = writeln!(
                s,
                "{}  {}  {}  {}时限 {}",
                o.ticket_no,
                o.department,
                o.title,
                o.clock,
                local(o.due)
            );
        }
        if self.overdue.is_empty() {
            let _ = writeln!(s, "（无）");
        }
        s
    }

    /// The bulletin as an HTML page; `chart` is the PNG's file name, if any.
    pub fn html(&self, chart: Option<&str>) -> String {
        let e = escape;
        let c = &self.city;
        let mut s = String::new();
        let _ = write!(
            s,
            "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{}</title>\
             <style>body{{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}}\
             table{{border-collapse:collapse;width:100%;margin:1em 0}}th,td{{border:1px solid #ccc;padding:4px 8px;text-align:right}}\
             th:nth-child(2),td:nth-child(2){{text-align:left}}caption{{text-align:left;font-weight:bold}}</style></head><body>",
            e(&self.title())
        );
        let _ = write!(
            s,
            "<h1>{}</h1><p>统计周期：{} 至 {}（共{}天）；对比上期：{} 至 {}</p>",
            e(&self.title()),
            self.period.from,
            last_day(&self.period),
            self.period.days(),
            self.previous.from,
            last_day(&self.previous)
        );
        let _ = write!(
            s,
            "<table><caption>一、总体情况</caption><tr><th>指标</th><th>本期</th><th>分子/分母</th><th>上期</th><th>变化</th></tr>\
             <tr><td>受理量</td><td>{}</td><td></td><td>{}</td><td>{}</td></tr>",
            c.intake.numerator,
            self.before.intake.numerator,
            change_count(c.intake.numerator, self.before.intake.numerator)
        );
        for ((name, now), (_, before)) in rates(c).into_iter().zip(rates(&self.before)) {
            let _ = write!(
                s,
                "<tr><td>{name}</td><td>{}</td><td>{}/{}</td><td>{}</td><td>{}</td></tr>",
                pct(now),
                now.numerator,
                now.denominator,
                pct(before),
                change_points(now, before)
            );
        }
        let _ = write!(
            s,
            "<tr><td>期末超期未办</td><td>{}</td><td></td><td>{}</td><td></td></tr></table>",
            c.overdue_open.numerator, self.before.overdue_open.numerator
        );
        let _ = write!(
            s,
            "<table><caption>二、承办单位排名（按按期办结率，其次满意率）</caption><tr><th>排名</th><th>承办单位</th>\
             <th>应办结</th><th>按期办结</th><th>按期办结率</th><th>回访</th><th>满意</th><th>满意率</th><th>满意率排名</th></tr>"
        );
        let ranks = satisfaction_ranks(self);
        for (i, g) in self.departments.iter().enumerate() {
            let f = &g.figures;
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                i + 1,
                e(&g.name),
                f.on_time_rate.denominator,
                f.on_time_rate.numerator,
                pct(&f.on_time_rate),
                f.satisfaction_rate.denominator,
                f.satisfaction_rate.numerator,
                pct(&f.satisfaction_rate),
                ranks.get(g.key.as_str()).copied().unwrap_or(0)
            );
        }
        s.push_str("</table>");
        if let Some(png) = chart {
            let _ = write!(
                s,
                "<p><img src=\"{}\" alt=\"各单位按期办结率与满意率\" style=\"max-width:100%\"></p>",
                e(png)
            );
        }
        let _ = write!(
            s,
            "<table><caption>三、超期未办工单（截至 {}）</caption><tr><th>工单号</th><th>标题</th><th>承办单位</th><th>时限</th></tr>",
            local(self.as_of)
        );
        for o in &self.overdue {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}时限 {}</td></tr>",
                e(&o.ticket_no),
                e(&o.title),
                e(&o.department),
                o.clock,
                local(o.due)
            );
        }
        s.push_str("</table></body></html>\n");
        s
    }

    /// On-time and satisfaction rates by department as a PNG bar chart
    /// (department codes as labels: the chart font is ASCII).
    pub fn chart_png(&self) -> Vec<u8> {
        let bars: Vec<chart::Bar> = self
            .departments
            .iter()
            .map(|g| chart::Bar {
                label: g.key.clone(),
                values: [
                    g.figures.on_time_rate.rate,
                    g.figures.satisfaction_rate.rate,
                ],
            })
            .collect();
        chart::bar_chart_png(
            &format!(
                "12345 on-time and satisfaction {} .. {}",
                self.period.from,
                last_day(&self.period)
            ),
            ["on-time (an qi ban jie lv)", "satisfaction (man yi lv)"],
            &bars,
        )
    }

    /// The bulletin as one outbox row to every leader with an address.
    pub async fn draft_mail(&self, store: &Store) -> StoreResult<OutboxDraft> {
        let dir = Directory::load(store).await?;
        Ok(OutboxDraft {
            kind: bulletin_kind(&self.period),
            ticket_id: None,
            recipient: dir.addresses(&Audience::Leaders).join(", "),
            subject: self.title(),
            body: self.text(),
        })
    }
}

/// The outbox kind of a period's bulletin: one per period.
pub fn bulletin_kind(p: &Period) -> String {
    format!("bulletin:{}:{}", p.from, p.to)
}

/// Text escaped for HTML and SVG/XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
