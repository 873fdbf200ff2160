//! Repeat appeals (重复件): a new appeal may repeat an earlier one when it
//! comes from the same phone with similar text, or names the same address
//! with the same category, within 72 hours. Pure: the store finds the
//! earlier tickets, this decides which one (if any) the new appeal repeats.
//!
//! Similar text is the Dice coefficient of character bigrams over title and
//! content, after dropping the phrases every appeal carries (市民来电反映,
//! 请尽快处理): no dictionary, tolerant of typos, and cheap enough for the
//! intake path.

use chrono::{DateTime, Duration, Utc};

/// How far back an earlier appeal counts.
pub const WINDOW_HOURS: i64 = 72;

/// Texts at least this similar (Dice over character bigrams) are "similar".
pub const SIMILAR_TEXT: f64 = 0.4;

/// Formulae of intake records and of citizens' letters: shared by unrelated
/// appeals, so they must not make two appeals look alike. Longest first.
const BOILERPLATE: &[&str] = &[
    "希望相关部门尽快",
    "请相关部门尽快",
    "请有关部门尽快",
    "市民来电反映",
    "来电人反映",
    "市民来信反映",
    "网民留言反映",
    "请相关部门",
    "请有关部门",
    "希望有关部门",
    "希望相关部门",
    "请尽快处理",
    "请尽快解决",
    "请予以处理",
    "请核实处理",
    "市民反映",
    "来电反映",
    "网民反映",
    "尽快处理",
    "予以解决",
    "核实处理",
    "谢谢",
];

/// The parts of an appeal duplicate detection compares.
#[derive(Debug, Clone, Copy)]
pub struct Appeal<'a> {
    pub phone: Option<&'a str>,
    pub address: Option<&'a str>,
    pub category: &'a str,
    pub title: &'a str,
    pub content: &'a str,
}

/// Why an appeal looks like a repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    SamePhoneSimilarText,
    SameAddressAndCategory,
}

/// The start of the window for an appeal registered at `now`.
pub fn window_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::hours(WINDOW_HOURS)
}

/// Sorted, distinct character bigrams of `title` and `content`; boilerplate
/// and punctuation break the text into runs, and no bigram spans a break.
/// A run of one character counts as itself.
pub fn bigrams(title: &str, content: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for part in [title, content] {
        let mut text = part.to_lowercase();
        for phrase in BOILERPLATE {
            if text.contains(phrase) {
                text = text.replace(phrase, " ");
            }
        }
        for run in text.split(|c: char| !c.is_alphanumeric()) {
            let chars: Vec<char> = run.chars().collect();
            match chars.len() {
                0 => {}
                1 => out.push(u64::from(chars[0] as u32) << 32),
                _ => out.extend(
                    chars
                        .windows(2)
                        .map(|w| (u64::from(w[0] as u32) << 32) | u64::from(w[1] as u32)),
                ),
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Dice coefficient of two sorted, distinct bigram sets: 2|A∩B| / (|A|+|B|).
pub fn dice(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    2.0 * common as f64 / (a.len() + b.len()) as f64
}

/// How alike two appeals' texts are, 0 to 1.
pub fn similarity(a: &Appeal<'_>, b: &Appeal<'_>) -> f64 {
    dice(&bigrams(a.title, a.content), &bigrams(b.title, b.content))
}

/// An appeal prepared for comparing against many: its bigrams computed once.
pub struct Probe<'a> {
    appeal: Appeal<'a>,
    grams: Vec<u64>,
    /// Compared as written (trimmed): the store finds earlier tickets by
    /// an index on the address, which matches exactly.
    address: Option<&'a str>,
}

impl<'a> Probe<'a> {
    pub fn new(appeal: Appeal<'a>) -> Probe<'a> {
        Probe {
            grams: bigrams(appeal.title, appeal.content),
            address: appeal.address.map(str::trim).filter(|a| !a.is_empty()),
            appeal,
        }
    }

    /// Whether this appeal repeats `earlier` (the window is the caller's).
    pub fn repeats(&self, earlier: &Probe<'_>) -> Option<Reason> {
        let (a, b) = (&self.appeal, &earlier.appeal);
        if a.phone.is_some()
            && a.phone == b.phone
            && dice(&self.grams, &earlier.grams) >= SIMILAR_TEXT
        {
            return Some(Reason::SamePhoneSimilarText);
        }
        if self.address.is_some() && self.address == earlier.address && a.category == b.category {
            return Some(Reason::SameAddressAndCategory);
        }
        None
    }
}

/// The first of `earlier` (oldest first) that `new` repeats: the appeal a
/// dispatcher would merge the others into.
pub fn first_repeated<'e, T>(
    new: &Probe<'_>,
    earlier: impl IntoIterator<Item = (&'e Probe<'e>, T)>,
) -> Option<(T, Reason)> {
    earlier
        .into_iter()
        .find_map(|(p, key)| new.repeats(p).map(|r| (key, r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn appeal<'a>(phone: Option<&'a str>, title: &'a str, content: &'a str) -> Appeal<'a> {
        Appeal {
            phone,
            address: None,
            category: "complaint",
            title,
            content,
        }
    }

    fn sim(a: (&str, &str), b: (&str, &str)) -> f64 {
        similarity(&appeal(None, a.0, a.1), &appeal(None, b.0, b.1))
    }

    #[test]
    fn the_same_text_is_fully_similar_and_unrelated_texts_are_not() {
        let a = (
            "小区门口路灯不亮",
            "小区门口路灯连续多日不亮，夜间出行不便。",
        );
        assert!((sim(a, a) - 1.0).abs() < 1e-9);
        let noise = (
            "楼上装修噪音扰民",
            "楼上住户每天晚上十点后装修，噪音很大，无法休息。",
        );
        assert!(sim(a, noise) < 0.1, "{}", sim(a, noise));
        assert_eq!(sim(("", ""), a), 0.0);
    }

    #[test]
    fn a_citizen_calling_again_about_the_same_thing_is_similar() {
        let first = ("路灯不亮", "小区门口路灯不亮，晚上很黑。");
        let again = (
            "路灯不亮",
            "小区门口路灯不亮，已经一个星期了，还没有人来修。",
        );
        let s = sim(first, again);
        assert!(s >= SIMILAR_TEXT, "{s}");
        // Copied between channels with small edits: well above the threshold.
        let copied = ("小区门口路灯不亮!", "小区门口路灯不亮, 晚上很黑!!");
        assert!(sim(first, copied) > 0.8);
    }

    #[test]
    fn boilerplate_does_not_make_different_appeals_alike() {
        let water = ("停水", "市民来电反映：停水，请尽快处理。");
        let noise = ("噪音", "市民来电反映：噪音，请尽快处理。");
        assert!(sim(water, noise) < 0.1, "{}", sim(water, noise));
        assert!(sim(water, water) > 0.99);
    }

    #[test]
    fn bigrams_do_not_span_punctuation_and_single_characters_count() {
        // "水" alone is one token; "a，b" gives no "ab".
        assert_eq!(bigrams("水", "").len(), 1);
        assert_eq!(bigrams("a，b", "").len(), 2);
        assert_eq!(bigrams("ab", "AB"), bigrams("ab", ""));
    }

    #[test]
    fn same_phone_needs_similar_text_and_same_address_needs_same_category() {
        let first = Probe::new(Appeal {
            phone: Some("13800001234"),
            address: Some(" 东湖区阳明路1号 "),
            category: "complaint",
            title: "路灯不亮",
            content: "小区门口路灯不亮，晚上很黑。",
        });
        let same_phone = Probe::new(Appeal {
            address: None,
            ..appeal(
                Some("13800001234"),
                "路灯不亮",
                "小区门口路灯还是不亮，晚上很黑。",
            )
        });
        assert_eq!(
            same_phone.repeats(&first),
            Some(Reason::SamePhoneSimilarText)
        );
        let other_phone = Probe::new(appeal(
            Some("13900000000"),
            "路灯不亮",
            "小区门口路灯还是不亮，晚上很黑。",
        ));
        assert_eq!(other_phone.repeats(&first), None);
        let other_text = Probe::new(appeal(
            Some("13800001234"),
            "公积金提取",
            "想咨询住房公积金提取需要哪些材料。",
        ));
        assert_eq!(other_text.repeats(&first), None);
        let same_place = Probe::new(Appeal {
            phone: None,
            address: Some("东湖区阳明路1号"),
            category: "complaint",
            title: "噪音",
            content: "夜间施工噪音。",
        });
        assert_eq!(
            same_place.repeats(&first),
            Some(Reason::SameAddressAndCategory)
        );
        let same_place_consult = Probe::new(Appeal {
            category: "consult",
            ..same_place.appeal
        });
        assert_eq!(same_place_consult.repeats(&first), None);
        // Anonymous appeals never match one another by their missing phone.
        let anon = Probe::new(appeal(None, "路灯不亮", "小区门口路灯不亮，晚上很黑。"));
        assert_eq!(anon.repeats(&Probe::new(anon.appeal)), None);
    }

    #[test]
    fn the_oldest_repeated_appeal_wins() {
        let a = Probe::new(appeal(Some("1"), "路灯不亮", "小区门口路灯不亮"));
        let b = Probe::new(appeal(Some("2"), "路灯不亮", "小区门口路灯不亮"));
        let c = Probe::new(appeal(Some("1"), "路灯不亮", "小区门口路灯不亮"));
        let new = Probe::new(appeal(Some("1"), "路灯不亮", "小区门口路灯不亮了"));
        let found = first_repeated(&new, [(&a, "A"), (&b, "B"), (&c, "C")]);
        assert_eq!(found, Some(("A", Reason::SamePhoneSimilarText)));
        assert!(window_start(Utc::now()) < Utc::now() - Duration::hours(71));
    }
}
