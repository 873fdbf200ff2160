//! `NewAppeal`: what every channel turns its input into before a ticket is
//! registered. Parsed and checked once here, so storage never re-validates.

use serde::Deserialize;

use super::types::{Category, Channel, DepartmentCode, Urgency};

pub const MAX_TITLE: usize = 200;
pub const MAX_CONTENT: usize = 10_000;
pub const MAX_ADDRESS: usize = 500;
pub const MAX_NAME: usize = 64;
pub const MAX_EXTERNAL_ID: usize = 128;

#[derive(Debug, Clone, PartialEq)]
pub struct NewAppeal {
    pub channel: Channel,
    pub external_id: Option<String>,
    pub category: Category,
    pub urgency: Urgency,
    pub title: String,
    pub content: String,
    pub citizen_name: Option<String>,
    pub citizen_phone: Option<String>,
    pub address: Option<String>,
    pub district: Option<DepartmentCode>,
    pub created_by: String,
}

impl NewAppeal {
    /// No phone to call back on.
    pub fn is_anonymous(&self) -> bool {
        self.citizen_phone.is_none()
    }
}

/// The JSON body of `POST /api/v1/tickets`, before checking.
#[derive(Debug, Clone, Deserialize)]
pub struct RawAppeal {
    pub channel: Channel,
    #[serde(default)]
    pub external_id: Option<String>,
    pub category: Category,
    #[serde(default = "normal")]
    pub urgency: Urgency,
    pub title: String,
    pub content: String,
    #[serde(default)]
    pub citizen: RawCitizen,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub district: Option<String>,
}

fn normal() -> Urgency {
    Urgency::Normal
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawCitizen {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

/// A trimmed optional string: blank means absent.
fn opt(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn check_len(errors: &mut Vec<String>, field: &str, s: &str, max: usize) {
    if s.chars().count() > max {
        errors.push(format!("`{field}` is longer than {max} characters"));
    }
}

fn has_control(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
}

/// Normalises a phone number: digits with an optional leading `+`; spaces
/// and dashes dropped. 5–20 digits (short numbers exist for landlines).
pub fn parse_phone(s: &str) -> Result<String, String> {
    let cleaned: String = s.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let digits = cleaned.strip_prefix('+').unwrap_or(&cleaned);
    if (5..=20).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(cleaned)
    } else {
        Err("`citizen.phone` must be 5–20 digits".into())
    }
}

impl RawAppeal {
    pub fn parse(self, created_by: &str) -> Result<NewAppeal, Vec<String>> {
        let mut errors = Vec::new();
        let title = self.title.trim().to_owned();
        let content = self.content.trim().to_owned();
        if title.is_empty() {
            errors.push("`title` must not be empty".into());
        }
        if content.is_empty() {
            errors.push("`content` must not be empty".into());
        }
        check_len(&mut errors, "title", &title, MAX_TITLE);
        check_len(&mut errors, "content", &content, MAX_CONTENT);
        if has_control(&title) || has_control(&content) {
            errors.push("`title` and `content` must not contain control characters".into());
        }
        let external_id = opt(self.external_id);
        if let Some(e) = &external_id {
            check_len(&mut errors, "external_id", e, MAX_EXTERNAL_ID);
        }
        let citizen_name = opt(self.citizen.name);
        if let Some(n) = &citizen_name {
            check_len(&mut errors, "citizen.name", n, MAX_NAME);
        }
        let citizen_phone = match opt(self.citizen.phone) {
            None => None,
            Some(p) => match parse_phone(&p) {
                Ok(p) => Some(p),
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
        };
        let address = opt(self.address);
        if let Some(a) = &address {
            check_len(&mut errors, "address", a, MAX_ADDRESS);
        }
        let district = match opt(self.district) {
            None => None,
            Some(d) => match DepartmentCode::parse(&d) {
                Ok(d) => Some(d),
                Err(e) => {
                    errors.push(format!("`district`: {e}"));
                    None
                }
            },
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(NewAppeal {
            channel: self.channel,
            external_id,
            category: self.category,
            urgency: self.urgency,
            title,
            content,
            citizen_name,
            citizen_phone,
            address,
            district,
            created_by: created_by.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: serde_json::Value) -> RawAppeal {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_complete_appeal_parses_and_trims() {
        let a = raw(serde_json::json!({
            "channel": "hotline", "category": "complaint", "urgency": "urgent",
            "title": " 水管爆裂 ", "content": "路口冒水",
            "citizen": {"name": "张三", "phone": "138-0000-0000"},
            "district": "donghu"
        }))
        .parse("agent1")
        .unwrap();
        assert_eq!(a.title, "水管爆裂");
        assert_eq!(a.citizen_phone.as_deref(), Some("13800000000"));
        assert!(!a.is_anonymous());
    }

    #[test]
    fn blank_phone_means_anonymous_and_bad_fields_are_all_reported() {
        let a = raw(serde_json::json!({
            "channel": "mailbox", "category": "consult", "title": "t", "content": "c",
            "citizen": {"phone": "  "}
        }))
        .parse("x")
        .unwrap();
        assert!(a.is_anonymous());
        let errs = raw(serde_json::json!({
            "channel": "mailbox", "category": "consult", "title": "", "content": "c",
            "citizen": {"phone": "abc"}, "district": "Not A Code"
        }))
        .parse("x")
        .unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
    }
}
