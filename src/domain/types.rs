//! Vocabulary of the product: the enums and newtypes whose serde names are the
//! ones DESIGN.md uses on the wire and in the database.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Declares a string-backed enum whose wire name, database value and `FromStr`
/// all agree, so a value is parsed once at the edge and never re-checked.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue {
                        kind: stringify!($name),
                        value: s.chars().take(64).collect(),
                        allowed: &[$($text),+],
                    }),
                }
            }
        }
    };
}

/// A string that is not one of an enum's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}` (allowed: {})", allowed.join(", "))]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
    pub allowed: &'static [&'static str],
}

string_enum!(TicketState {
    Registered => "registered",
    Dispatched => "dispatched",
    InProgress => "in_progress",
    Returned => "returned",
    Replied => "replied",
    Closed => "closed",
    Merged => "merged",
});

impl TicketState {
    /// Open tickets are the ones somebody still has to act on.
    pub fn is_open(self) -> bool {
        !matches!(self, TicketState::Closed | TicketState::Merged)
    }
}

string_enum!(Resolution {
    Answered => "answered",
    DirectAnswer => "direct_answer",
    Rejected => "rejected",
    TransferredEmergency => "transferred_emergency",
});

string_enum!(Category {
    Consult => "consult",
    Help => "help",
    Complaint => "complaint",
    Report => "report",
    Suggestion => "suggestion",
    Praise => "praise",
});

impl Category {
    pub fn zh(self) -> &'static str {
        match self {
            Category::Consult => "咨询",
            Category::Help => "求助",
            Category::Complaint => "投诉",
            Category::Report => "举报",
            Category::Suggestion => "建议",
            Category::Praise => "表扬",
        }
    }
}

string_enum!(Urgency {
    Normal => "normal",
    Urgent => "urgent",
});

string_enum!(Channel {
    Hotline => "hotline",
    Mailbox => "mailbox",
    Wenzheng => "wenzheng",
    Open311 => "open311",
});

impl Channel {
    /// The name people use for the channel.
    pub fn zh(self) -> &'static str {
        match self {
            Channel::Hotline => "12345热线",
            Channel::Mailbox => "市长信箱",
            Channel::Wenzheng => "问政江西",
            Channel::Open311 => "Open311",
        }
    }

    /// The letter inside a ticket number.
    pub fn letter(self) -> char {
        match self {
            Channel::Hotline => 'H',
            Channel::Mailbox => 'M',
            Channel::Wenzheng => 'W',
            Channel::Open311 => 'O',
        }
    }
}

string_enum!(Role {
    Agent => "agent",
    Dispatcher => "dispatcher",
    Handler => "handler",
    DeptHead => "dept_head",
    Supervisor => "supervisor",
    Leader => "leader",
    Admin => "admin",
});

impl Role {
    /// Roles bound to one department, which see only that department's tickets.
    pub fn is_department_scoped(self) -> bool {
        matches!(self, Role::Handler | Role::DeptHead)
    }

    /// Roles that see citizen name and phone unmasked (they talk to citizens).
    pub fn sees_citizen_data(self) -> bool {
        matches!(self, Role::Agent | Role::Dispatcher)
    }
}

string_enum!(Satisfaction {
    Satisfied => "satisfied",
    BasicallySatisfied => "basically_satisfied",
    Dissatisfied => "dissatisfied",
    Unreachable => "unreachable",
});

string_enum!(EventKind {
    Created => "created",
    Dispatched => "dispatched",
    Signed => "signed",
    Returned => "returned",
    ExtensionRequested => "extension_requested",
    ExtensionDecided => "extension_decided",
    Replied => "replied",
    Callback => "callback",
    Reopened => "reopened",
    Closed => "closed",
    Merged => "merged",
    Escalated => "escalated",
    Note => "note",
});

string_enum!(DepartmentKind {
    Functional => "functional",
    District => "district",
});

string_enum!(ExtensionStatus {
    Pending => "pending",
    Approved => "approved",
    Rejected => "rejected",
});

/// A department code such as `city_management` or `donghu`: lowercase ASCII,
/// digits and underscores, so it is safe in URLs, CSV and e-mail subjects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DepartmentCode(String);

impl DepartmentCode {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(DepartmentCode(s.to_owned()))
        } else {
            Err(format!(
                "`{}` is not a department code (lowercase letters, digits and _, at most 64)",
                s.chars().take(64).collect::<String>()
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for DepartmentCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DepartmentCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for DepartmentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `YYYYMMDD` + channel letter + 6-digit daily sequence, e.g. `20261121H000123`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TicketNo(String);

impl TicketNo {
    pub fn new(day: chrono::NaiveDate, channel: Channel, seq: u32) -> Self {
        TicketNo(format!(
            "{}{}{:06}",
            day.format("%Y%m%d"),
            channel.letter(),
            seq
        ))
    }

    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let ok = b.len() == 15
            && b[..8].iter().all(u8::is_ascii_digit)
            && matches!(b[8], b'H' | b'M' | b'W' | b'O')
            && b[9..].iter().all(u8::is_ascii_digit)
            && chrono::NaiveDate::parse_from_str(&s[..8], "%Y%m%d").is_ok();
        ok.then(|| TicketNo(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Masks a citizen's name for people who need not know it: `张三` → `张*`.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        None => String::new(),
        Some(first) => {
            let rest = chars.count().max(1);
            std::iter::once(first)
                .chain(std::iter::repeat_n('*', rest))
                .collect()
        }
    }
}

/// Masks a phone number: `13800000000` → `138****0000`.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() >= 7 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}****{tail}")
    } else {
        "*".repeat(chars.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_their_wire_names() {
        for s in TicketState::ALL {
            assert_eq!(s.as_str().parse::<TicketState>().unwrap(), *s);
            assert_eq!(
                serde_json::to_string(s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert!("bogus".parse::<Category>().is_err());
    }

    #[test]
    fn ticket_numbers_have_the_documented_shape() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        let no = TicketNo::new(day, Channel::Hotline, 123);
        assert_eq!(no.as_str(), "20261121H000123");
        assert!(TicketNo::parse("20261121H000123").is_some());
        assert!(TicketNo::parse("20261321H000123").is_none());
        assert!(TicketNo::parse("20261121X000123").is_none());
    }

    #[test]
    fn masking_hides_all_but_the_edges() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("欧阳修文"), "欧***");
        assert_eq!(mask_name("王"), "王*");
        assert_eq!(mask_phone("13800000000"), "138****0000");
        assert_eq!(mask_phone("12345"), "*****");
    }

    #[test]
    fn department_codes_are_checked() {
        assert!(DepartmentCode::parse("city_management").is_ok());
        assert!(DepartmentCode::parse("City").is_err());
        assert!(DepartmentCode::parse("").is_err());
        assert!(DepartmentCode::parse("a-b").is_err());
    }
}
