//! What an appeal is about and where: the catalogue topic its words name, the
//! district its address names, and a place key (小区, street, 街道) that two
//! addresses of the same place share however they go on ("3栋", "东门").

use std::collections::HashMap;

use crate::domain::catalogue::Catalogue;
use crate::domain::types::DepartmentKind;

/// Suffixes that end a place name, by how precisely they locate an appeal:
/// a residential compound or landmark first, then a street, a community,
/// a sub-district. Longer suffixes are tried first (新村 before 村).
const ESTATE: u8 = 0;
const STREET: u8 = 1;
const COMMUNITY: u8 = 2;
const SUBDISTRICT: u8 = 3;
/// Province, city, district, county: they only end a prefix.
const ADMIN: u8 = 9;

const MARKERS: &[(&str, u8)] = &[
    ("小区", ESTATE),
    ("花园", ESTATE),
    ("家园", ESTATE),
    ("新村", ESTATE),
    ("公寓", ESTATE),
    ("大厦", ESTATE),
    ("广场", ESTATE),
    ("苑", ESTATE),
    ("园", ESTATE),
    ("村", ESTATE),
    ("街道", SUBDISTRICT),
    ("大道", STREET),
    ("大街", STREET),
    ("路", STREET),
    ("街", STREET),
    ("巷", STREET),
    ("社区", COMMUNITY),
    ("镇", SUBDISTRICT),
    ("乡", SUBDISTRICT),
    ("省", ADMIN),
    ("市", ADMIN),
    ("县", ADMIN),
    ("区", ADMIN),
];

/// Words that contain a marker character but end no place (华润超市, 菜市场).
const NOT_MARKERS: &[&str] = &["超市", "市场", "市政"];

/// Counting words after a number: "3栋2单元501室" names no place.
const COUNTERS: &[char] = &[
    '号', '栋', '幢', '座', '室', '层', '楼', '期', '弄', '单', '元',
];

/// Longest accepted place name, in characters: anything longer is a
/// sentence, not an address.
const MAX_NAME: usize = 16;

fn is_cjk(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4dbf}' | '\u{4e00}'..='\u{9fff}' | '\u{f900}'..='\u{faff}')
}

/// Full-width ASCII to ASCII, so "３栋" reads as "3栋".
fn half_width(c: char) -> char {
    match c {
        '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// Runs of Chinese characters; numbers and the counting words after them
/// ("3栋", "12号") end a run.
fn runs(address: &str) -> Vec<Vec<char>> {
    let chars: Vec<char> = address.chars().map(half_width).collect();
    let mut out = Vec::new();
    let mut run = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_cjk(c) {
            run.push(c);
            i += 1;
            continue;
        }
        if !run.is_empty() {
            out.push(std::mem::take(&mut run));
        }
        i += 1;
        if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_digit() || matches!(chars[i], '-' | '#')) {
                i += 1;
            }
            while i < chars.len() && COUNTERS.contains(&chars[i]) {
                i += 1;
            }
        }
    }
    if !run.is_empty() {
        out.push(run);
    }
    out
}

fn starts_with(run: &[char], at: usize, word: &str) -> bool {
    let mut rest = run.get(at..).unwrap_or_default().iter();
    word.chars().all(|w| rest.next() == Some(&w))
}

/// The place an address names, normalised so that two appeals from the same
/// compound or street share it: the first compound (小区, 花园, 苑, 村…) in
/// the address, else its first street (路, 街, 大道…), else its community
/// (社区), else its sub-district (街道, 镇, 乡). Province, city and district
/// prefixes are dropped; building and room numbers never count.
///
/// "青山湖区幸福小区3栋" → "幸福小区"; "东湖区八一大道123号" → "八一大道".
pub fn place_key(address: &str) -> Option<String> {
    let mut best: Option<(u8, String)> = None;
    for run in runs(address) {
        let mut start = 0;
        let mut i = 0;
        while i < run.len() {
            if let Some(w) = NOT_MARKERS.iter().find(|w| starts_with(&run, i, w)) {
                i += w.chars().count();
                continue;
            }
            let Some((len, tier)) = marker_at(&run, i) else {
                i += 1;
                continue;
            };
            let end = i + len;
            // 花园路, 八一路小区, 新村街道: a place marker followed by another
            // is part of a longer name.
            if tier != ADMIN && marker_at(&run, end).is_some_and(|(_, t)| t != ADMIN) {
                i = end;
                continue;
            }
            if tier != ADMIN
                && i > start
                && end - start <= MAX_NAME
                && best.as_ref().is_none_or(|(t, _)| tier < *t)
            {
                best = Some((tier, run[start..end].iter().collect()));
            }
            start = end;
            i = end;
        }
    }
    best.map(|(_, name)| name)
}

/// The marker starting at `i`, as (length, tier).
fn marker_at(run: &[char], i: usize) -> Option<(usize, u8)> {
    if NOT_MARKERS.iter().any(|w| starts_with(run, i, w)) {
        return None;
    }
    MARKERS
        .iter()
        .find(|(m, _)| starts_with(run, i, m))
        .map(|(m, tier)| (m.chars().count(), *tier))
}

/// The catalogue's topics as keyword rules, and its districts by name.
#[derive(Debug, Clone)]
pub struct Matcher {
    topics: Vec<(String, String)>,
    keywords: Vec<(Vec<char>, usize)>,
    by_first: HashMap<char, Vec<usize>>,
    /// District code and the name addresses use ("青山湖区").
    districts: Vec<(String, String)>,
}

/// The catch-all topic of each department ("其他…事项") names the department,
/// not a matter: appeals that only match it are no common problem.
fn is_catch_all(code: &str) -> bool {
    code.starts_with("other_")
}

impl Matcher {
    pub fn new(catalogue: &Catalogue) -> Matcher {
        let mut topics = Vec::new();
        let mut keywords = Vec::new();
        for t in catalogue.topics.iter().filter(|t| !is_catch_all(&t.code)) {
            for k in &t.keywords {
                let chars: Vec<char> = k.trim().to_lowercase().chars().collect();
                if !chars.is_empty() {
                    keywords.push((chars, topics.len()));
                }
            }
            topics.push((t.code.clone(), t.name.clone()));
        }
        let mut by_first: HashMap<char, Vec<usize>> = HashMap::new();
        for (i, (k, _)) in keywords.iter().enumerate() {
            by_first.entry(k[0]).or_default().push(i);
        }
        let districts = catalogue
            .departments
            .iter()
            .filter(|d| d.kind == DepartmentKind::District)
            .map(|d| {
                let name = d.name.trim_end_matches("人民政府").to_owned();
                (d.code.as_str().to_owned(), name)
            })
            .collect();
        Matcher {
            topics,
            keywords,
            by_first,
            districts,
        }
    }

    /// The topic's name, when `code` is a topic hotspots count.
    pub fn topic_name(&self, code: &str) -> Option<&str> {
        self.topics
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, n)| n.as_str())
    }

    /// The topic the appeal's words name: keywords match longest first and
    /// never overlap (小区路灯 hides 路灯), each distinct keyword counts once
    /// and a longer one a little more; the strongest topic wins, the one
    /// named first on a tie. `None` when no keyword matches.
    pub fn topic(&self, title: &str, content: &str) -> Option<&str> {
        let text: Vec<char> = format!("{title}\n{content}")
            .to_lowercase()
            .chars()
            .collect();
        let mut found: Vec<(usize, usize, usize)> = Vec::new(); // (start, len, keyword)
        for (i, c) in text.iter().enumerate() {
            for &k in self.by_first.get(c).into_iter().flatten() {
                let kw = &self.keywords[k].0;
                if text[i..].starts_with(kw) {
                    found.push((i, kw.len(), k));
                }
            }
        }
        found.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut taken: Vec<(usize, usize)> = Vec::new();
        let mut seen: Vec<usize> = Vec::new();
        // Per topic: evidence and the first position it was named at.
        let mut score: HashMap<usize, (f32, usize)> = HashMap::new();
        for (start, len, k) in found {
            let end = start + len;
            if taken.iter().any(|&(s, e)| start < e && s < end) {
                continue;
            }
            taken.push((start, end));
            if seen.contains(&k) {
                continue;
            }
            seen.push(k);
            let e = score.entry(self.keywords[k].1).or_insert((0.0, start));
            e.0 += 1.0 + (len.min(6) as f32 - 2.0) / 4.0;
            e.1 = e.1.min(start);
        }
        score
            .into_iter()
            .max_by(|a, b| a.1.0.total_cmp(&b.1.0).then(b.1.1.cmp(&a.1.1)))
            .map(|(t, _)| self.topics[t].0.as_str())
    }

    /// The district whose name the address contains (the longest such name).
    pub fn district_in(&self, address: &str) -> Option<&str> {
        self.districts
            .iter()
            .filter(|(_, name)| !name.is_empty() && address.contains(name.as_str()))
            .max_by_key(|(_, name)| name.chars().count())
            .map(|(code, _)| code.as_str())
    }

    /// Whether `code` is a district of the catalogue.
    pub fn is_district(&self, code: &str) -> bool {
        self.districts.iter().any(|(c, _)| c == code)
    }
}
