//! What notices say (Chinese subjects and bodies) and who they go to, by
//! audience. Pure: the store resolves audiences to e-mail addresses.

use chrono::{DateTime, Utc};

use super::calendar::city_tz;

/// Who a notice is for; the store turns this into addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// The department's own mailbox (catalogue e-mail) and its handlers.
    Department(String),
    /// The department's mailbox and its `dept_head` users (催办).
    DepartmentHeads(String),
    /// Every `supervisor` and `leader` (督办).
    SupervisorsAndLeaders,
    /// Every `supervisor` (热点预警).
    Supervisors,
    /// Every `leader` (通报).
    Leaders,
}

/// The facts a notice needs about a ticket.
#[derive(Debug, Clone)]
pub struct TicketFacts<'a> {
    pub id: i64,
    pub ticket_no: &'a str,
    pub title: &'a str,
    pub department_name: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: &'static str,
    pub audience: Audience,
    pub subject: String,
    pub body: String,
}

fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&city_tz())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// "3天4小时" style lateness.
pub fn lateness(deadline: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let mins = (at - deadline).num_minutes().max(0);
    let (d, h, m) = (mins / 1440, (mins % 1440) / 60, mins % 60);
    match (d, h) {
        (0, 0) => format!("{m}分钟"),
        (0, _) => format!("{h}小时{m}分钟"),
        _ => format!("{d}天{h}小时"),
    }
}

fn link(base_url: &str, id: i64) -> String {
    format!("{}/tickets/{id}", base_url.trim_end_matches('/'))
}

/// The notice for reaching an escalation level (1 warning, 2 overdue, 3
/// supervised) on the `clock` (`sign` or `reply`).
pub fn escalation(
    t: &TicketFacts<'_>,
    department: &str,
    level: i16,
    clock: &str,
    deadline: DateTime<Utc>,
    at: DateTime<Utc>,
    base_url: &str,
) -> Notice {
    let what = if clock == "sign" {
        "签收"
    } else {
        "办结答复"
    };
    let url = link(base_url, t.id);
    let (kind, audience, subject, body) = match level {
        1 => (
            "warning",
            Audience::Department(department.to_owned()),
            format!("【12345预警】工单{}即将超期{}", t.ticket_no, what),
            format!(
                "{}：\n\n工单 {}《{}》的{}时限为 {}，即将到期，请抓紧办理。\n\n查看工单：{}\n\n12345政务服务便民热线",
                t.department_name,
                t.ticket_no,
                t.title,
                what,
                local(deadline),
                url
            ),
        ),
        2 => (
            "overdue",
            Audience::DepartmentHeads(department.to_owned()),
            format!("【12345催办】工单{}已超期未{}", t.ticket_no, what),
            format!(
                "{}负责同志：\n\n工单 {}《{}》的{}时限为 {}，现已超期 {}。请督促承办人立即办理并答复。\n\n查看工单：{}\n\n12345政务服务便民热线",
                t.department_name,
                t.ticket_no,
                t.title,
                what,
                local(deadline),
                lateness(deadline, at),
                url
            ),
        ),
        _ => (
            "supervised",
            Audience::SupervisorsAndLeaders,
            format!(
                "【12345督办】{}工单{}严重超期",
                t.department_name, t.ticket_no
            ),
            format!(
                "工单 {}《{}》（承办单位：{}）的{}时限为 {}，已超期 {}，列入督办。\n\n查看工单：{}\n\n12345政务服务便民热线",
                t.ticket_no,
                t.title,
                t.department_name,
                what,
                local(deadline),
                lateness(deadline, at),
                url
            ),
        ),
    };
    Notice {
        kind,
        audience,
        subject,
        body,
    }
}

/// The notice that a ticket was dispatched to a department.
pub fn dispatched(
    t: &TicketFacts<'_>,
    department: &str,
    reply_due: Option<DateTime<Utc>>,
    base_url: &str,
) -> Notice {
    Notice {
        kind: "dispatched",
        audience: Audience::Department(department.to_owned()),
        subject: format!("【12345派单】新工单{}：{}", t.ticket_no, t.title),
        body: format!(
            "{}：\n\n12345热线向你单位派发工单 {}《{}》，请及时签收办理{}。\n\n查看工单：{}\n\n12345政务服务便民热线",
            t.department_name,
            t.ticket_no,
            t.title,
            reply_due
                .map(|d| format!("，答复时限 {}", local(d)))
                .unwrap_or_default(),
            link(base_url, t.id)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_reads_naturally() {
        let d = Utc::now();
        assert_eq!(lateness(d, d + chrono::Duration::minutes(5)), "5分钟");
        assert_eq!(
            lateness(d, d + chrono::Duration::minutes(125)),
            "2小时5分钟"
        );
        assert_eq!(
            lateness(d, d + chrono::Duration::minutes(3 * 1440 + 4 * 60)),
            "3天4小时"
        );
    }

    #[test]
    fn each_level_goes_to_its_audience_with_the_facts() {
        let f = TicketFacts {
            id: 7,
            ticket_no: "20261121H000001",
            title: "停水",
            department_name: "市水务集团",
        };
        let d = Utc::now();
        let n1 = escalation(&f, "water", 1, "reply", d, d, "http://x/");
        assert_eq!(n1.audience, Audience::Department("water".into()));
        assert!(n1.subject.contains("预警") && n1.body.contains("http://x/tickets/7"));
        let n2 = escalation(&f, "water", 2, "sign", d, d, "http://x");
        assert_eq!(n2.audience, Audience::DepartmentHeads("water".into()));
        assert!(n2.subject.contains("催办") && n2.subject.contains("签收"));
        let n3 = escalation(&f, "water", 3, "reply", d, d, "http://x");
        assert_eq!(n3.audience, Audience::SupervisorsAndLeaders);
        assert!(n3.subject.contains("督办") && n3.body.contains("市水务集团"));
    }
}
