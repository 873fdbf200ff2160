//! 智能派单: ranks the departments that could lead on an appeal. Catalogue
//! rules (topic keywords, 属地 for local matters) first, then a classifier
//! learned from history; both feed one softmax, so confidences are comparable.
//!
//! # Why character n-grams and logistic regression
//! Appeals are short (16–185 characters), colloquial and full of typos (然气,
//! 公基金, 幅射). Character 1–3-grams need no dictionary, still share most of
//! their grams with the right spelling when one character is wrong, and
//! cover most Chinese words, which are one to three characters long. Word
//! segmentation (jieba) would add a dictionary and still cut invented place
//! names and typos badly, for no gain on text this short.
//!
//! Over those features a multinomial logistic regression, trained by
//! stochastic gradient descent, rather than naive Bayes: on 10-fold
//! cross-validation of the shared corpus, with the same features and the
//! first catalogue, naive Bayes reached 0.86 top-1 and the regression 0.92.
//! Naive Bayes counts every gram as independent evidence, so the boilerplate
//! shared by all departments (市民来电反映, 请尽快处理) and the look-alike
//! words (路灯, 电梯, 工资) drown the few grams that decide; the regression
//! weighs grams against one another and its softmax is calibrated, which the
//! confidences need. An averaged perceptron would learn similar weights but
//! gives no probabilities. Training stays cheap: the number of passes shrinks
//! as the history grows (a million tickets are read twice), and the
//! catalogue's keywords, topic names and descriptions are added as
//! pseudo-documents, so the model works from day one with no history.
//!
//! # One ranking
//! Logit of a department = the classifier's logit + `rule_weight` for each
//! distinct catalogue keyword of one of its topics found in the title or
//! content (longest match first, so 小区路灯 hides 路灯; longer keywords
//! count a little more). One softmax over the sum gives the confidences.
//! District governments are one class, "local matter" (`@district`), whose
//! share goes to the appeal's registered district, else the district named
//! in its address or text; with no district anywhere that share is dropped,
//! so the confidences then sum to less than one.
//!
//! Features are hashed into a fixed table, so memory does not grow with the
//! history, and the trained [`Model`] sits behind an `Arc`: cloning it is free
//! and a retrained model replaces the old one by swapping a pointer.

mod model;
mod text;

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::catalogue::{Catalogue, DISTRICT_TARGET};
use super::types::{Category, Channel, DepartmentKind};
use model::softmax;
pub use model::{Model, Params};
use text::{Feature, Fields, SEP, normalise_into};

/// An appeal to route, borrowed from wherever it lives.
#[derive(Debug, Clone, Copy)]
pub struct Appeal<'a> {
    pub title: &'a str,
    pub content: &'a str,
    /// The district code (属地) given at intake, if any.
    pub district: Option<&'a str>,
    pub address: Option<&'a str>,
    /// Channel and category do not move the ranking (the history a model is
    /// trained from does not carry them); they are here so callers hand over
    /// the whole appeal and a later model may use them.
    pub channel: Channel,
    pub category: Category,
}

/// A historic ticket with the department that handled it (its dispatch was
/// not returned), or a line of the initial corpus.
#[derive(Debug, Clone, Deserialize)]
pub struct Example {
    pub title: String,
    pub content: String,
    /// Not needed to learn (all district labels train the one local-matter
    /// class); kept so a ticket converts without loss.
    #[serde(default)]
    pub district: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    /// A department code of the catalogue; others are skipped.
    pub department: String,
}

/// One ranked department.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    pub department: String,
    /// Probability-like, in [0, 1]; the confidences of one ranking sum to at
    /// most 1.
    pub confidence: f64,
    /// Why, in words a dispatcher can check.
    pub reason: String,
}

/// The class that stands for every district government: local matters are
/// learned as one class, then sent to the appeal's own district.
const LOCAL: &str = DISTRICT_TARGET;

/// Routes appeals with a catalogue's rules and a trained model. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Router {
    rules: Arc<Rules>,
    model: Model,
    /// For each of the rule classes, the model's class index.
    model_class: Arc<Vec<Option<usize>>>,
}

#[derive(Debug)]
struct Rules {
    /// Functional department codes, then [`LOCAL`].
    classes: Vec<String>,
    topics: Vec<TopicRule>,
    keywords: Vec<Keyword>,
    /// Keyword indices by first character.
    by_first: HashMap<char, Vec<usize>>,
    /// District code and name as written in addresses ("青山湖区").
    districts: Vec<(String, Vec<char>)>,
}

#[derive(Debug)]
struct TopicRule {
    name: String,
    class: usize,
}

#[derive(Debug)]
struct Keyword {
    chars: Vec<char>,
    topic: usize,
}

impl Router {
    pub fn new(catalogue: &Catalogue, model: Model) -> Router {
        let rules = Rules::new(catalogue);
        let model_class = rules
            .classes
            .iter()
            .map(|c| model.0.classes.iter().position(|m| m == c))
            .collect();
        Router {
            rules: Arc::new(rules),
            model,
            model_class: Arc::new(model_class),
        }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The `limit` most likely departments, most likely first.
    pub fn route(&self, appeal: &Appeal<'_>, limit: usize) -> Vec<Suggestion> {
        let rules = &*self.rules;
        let p = self.model.params();
        let mut text = Vec::with_capacity(appeal.title.len() + appeal.content.len() + 64);
        let fields = Fields::new(appeal.title, appeal.content, appeal.address, &mut text);
        let mut feats = Vec::new();
        fields.features(&text, p, &mut feats);

        let z = self.model.logits(&feats);
        // Keywords in the title and content only: an address names places
        // (某某街道, 某社区), not the matter.
        let hits = rules.matches(&text[..fields.content_end]);
        let mut logits: Vec<f32> = self
            .model_class
            .iter()
            .map(|m| m.map_or(f32::NEG_INFINITY, |i| z[i]))
            .collect();
        for (c, e) in rules.evidence(&hits).into_iter().enumerate() {
            if e > 0.0 {
                if logits[c] == f32::NEG_INFINITY {
                    logits[c] = 0.0;
                }
                logits[c] += p.rule_weight * e;
            }
        }
        softmax(&mut logits);

        let local = rules.classes.len() - 1;
        let district = rules.district(appeal, &text);
        let mut ranked: Vec<(usize, f64)> = logits
            .iter()
            .enumerate()
            .filter(|&(c, &pr)| pr > 0.0 && (c != local || district.is_some()))
            .map(|(c, &pr)| (c, f64::from(pr)))
            .collect();
        ranked.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then_with(|| rules.classes[a.0].cmp(&rules.classes[b.0]))
        });
        ranked.truncate(limit);
        ranked
            .into_iter()
            .map(|(c, confidence)| {
                let department = match (&district, c == local) {
                    (Some((code, _)), true) => code.clone(),
                    _ => rules.classes[c].clone(),
                };
                let reason = self.reason(c, &hits, &feats, &text, district.as_ref());
                Suggestion {
                    department,
                    confidence,
                    reason,
                }
            })
            .collect()
    }

    fn reason(
        &self,
        class: usize,
        hits: &[usize],
        feats: &[Feature],
        text: &[char],
        district: Option<&(String, Source)>,
    ) -> String {
        let rules = &*self.rules;
        let mut parts = Vec::new();
        if let (true, Some((code, source))) = (class == rules.classes.len() - 1, district) {
            let name = rules
                .districts
                .iter()
                .find(|(c, _)| c == code)
                .map(|(_, n)| n.iter().collect::<String>())
                .unwrap_or_else(|| code.clone());
            parts.push(format!("属地事项，归{name}（{}）", source.label()));
        }
        let mut by_topic: Vec<(usize, Vec<String>)> = Vec::new();
        for &h in hits {
            let k = &rules.keywords[h];
            if rules.topics[k.topic].class != class {
                continue;
            }
            let word: String = k.chars.iter().collect();
            match by_topic.iter_mut().find(|(t, _)| *t == k.topic) {
                Some((_, words)) if !words.contains(&word) => words.push(word),
                Some(_) => {}
                None => by_topic.push((k.topic, vec![word])),
            }
        }
        for (t, words) in by_topic {
            parts.push(format!(
                "目录事项「{}」关键词「{}」",
                rules.topics[t].name,
                words.join("」「")
            ));
        }
        if let Some(i) = self.model_class[class] {
            let words = self.top_features(i, feats, text, 3);
            if !words.is_empty() {
                parts.push(format!("分类模型依据「{}」", words.join("」「")));
            }
        }
        if parts.is_empty() {
            parts.push("无明显特征，按历史分布".to_owned());
        }
        parts.join("；")
    }

    /// The appeal's n-grams (two characters or more) that favour model class
    /// `i` most over the average class.
    fn top_features(&self, i: usize, feats: &[Feature], text: &[char], k: usize) -> Vec<String> {
        let m = &*self.model.0;
        let nm = m.classes.len();
        let mut scored: Vec<(f32, &Feature)> = feats
            .iter()
            .filter(|f| f.len >= 2)
            .map(|f| {
                let row = &m.weights[f.bucket as usize * nm..][..nm];
                let mean = row.iter().sum::<f32>() / nm as f32;
                (f.weight * (row[i] - mean), f)
            })
            .filter(|(s, _)| *s > 0.0)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.start.cmp(&b.1.start)));
        let mut out: Vec<String> = Vec::new();
        for (_, f) in scored {
            let s: String = text[f.start as usize..][..f.len as usize].iter().collect();
            if out.iter().any(|o| o.contains(&s) || s.contains(o.as_str())) {
                continue;
            }
            out.push(s);
            if out.len() == k {
                break;
            }
        }
        out
    }
}

/// Where the district of a local matter came from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    Field,
    Address,
    Text,
}

impl Source {
    fn label(self) -> &'static str {
        match self {
            Source::Field => "登记的属地",
            Source::Address => "按地址",
            Source::Text => "按诉求内容",
        }
    }
}

impl Rules {
    fn new(catalogue: &Catalogue) -> Rules {
        let mut classes: Vec<String> = catalogue
            .departments
            .iter()
            .filter(|d| d.kind == DepartmentKind::Functional)
            .map(|d| d.code.as_str().to_owned())
            .collect();
        classes.push(LOCAL.to_owned());
        let mut topics = Vec::new();
        let mut keywords = Vec::new();
        for t in &catalogue.topics {
            let Some(class) = classes.iter().position(|c| *c == t.department) else {
                continue;
            };
            for k in &t.keywords {
                let mut chars = Vec::new();
                normalise_into(k, &mut chars);
                if !chars.is_empty() && !chars.contains(&SEP) {
                    keywords.push(Keyword {
                        chars,
                        topic: topics.len(),
                    });
                }
            }
            topics.push(TopicRule {
                name: t.name.clone(),
                class,
            });
        }
        let mut by_first: HashMap<char, Vec<usize>> = HashMap::new();
        for (i, k) in keywords.iter().enumerate() {
            by_first.entry(k.chars[0]).or_default().push(i);
        }
        let districts = catalogue
            .departments
            .iter()
            .filter(|d| d.kind == DepartmentKind::District)
            .map(|d| {
                let name = d.name.trim_end_matches("人民政府");
                (d.code.as_str().to_owned(), name.chars().collect())
            })
            .collect();
        Rules {
            classes,
            topics,
            keywords,
            by_first,
            districts,
        }
    }

    fn class_of(&self, code: &str) -> Option<usize> {
        self.classes.iter().position(|c| c == code)
    }

    /// Keyword matches, longest first and never overlapping, so that a
    /// specific keyword (小区路灯, 遮挡路灯) hides the general one inside it
    /// (路灯).
    fn matches(&self, text: &[char]) -> Vec<usize> {
        let mut found: Vec<(usize, usize, usize)> = Vec::new(); // (start, len, keyword)
        for (i, c) in text.iter().enumerate() {
            let Some(ks) = self.by_first.get(c) else {
                continue;
            };
            for &k in ks {
                let kw = &self.keywords[k].chars;
                if text[i..].starts_with(kw) {
                    found.push((i, kw.len(), k));
                }
            }
        }
        found.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)).then(a.2.cmp(&b.2)));
        let mut taken: Vec<(usize, usize)> = Vec::new();
        let mut hits: Vec<usize> = Vec::new();
        for (start, len, k) in found {
            let end = start + len;
            if taken.iter().any(|&(s, e)| start < e && s < end) {
                continue;
            }
            taken.push((start, end));
            // The same keyword twice is no stronger than once.
            if hits
                .iter()
                .any(|&h| self.keywords[h].chars == self.keywords[k].chars)
            {
                continue;
            }
            hits.push(k);
        }
        hits
    }

    /// Keyword evidence per class: each distinct keyword counts once, a
    /// longer (more specific) one a little more — 1 for two characters, up
    /// to 2 for six or more.
    fn evidence(&self, hits: &[usize]) -> Vec<f32> {
        let mut e = vec![0f32; self.classes.len()];
        for &h in hits {
            let k = &self.keywords[h];
            let len = k.chars.len().min(6) as f32;
            e[self.topics[k.topic].class] += 1.0 + (len - 2.0) / 4.0;
        }
        e
    }

    /// The district of the appeal: the registered one, else the first
    /// district named in the address, else in the title or content.
    fn district(&self, appeal: &Appeal<'_>, text: &[char]) -> Option<(String, Source)> {
        if let Some(d) = appeal.district
            && self.districts.iter().any(|(c, _)| c == d)
        {
            return Some((d.to_owned(), Source::Field));
        }
        let mut chars = Vec::new();
        if let Some(a) = appeal.address {
            normalise_into(a, &mut chars);
            if let Some(code) = self.first_district(&chars) {
                return Some((code, Source::Address));
            }
        }
        self.first_district(text).map(|c| (c, Source::Text))
    }

    fn first_district(&self, text: &[char]) -> Option<String> {
        (0..text.len()).find_map(|i| {
            self.districts
                .iter()
                .find(|(_, name)| !name.is_empty() && text[i..].starts_with(name))
                .map(|(code, _)| code.clone())
        })
    }
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
