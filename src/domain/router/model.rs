//! The statistical half of the router: a multinomial logistic regression
//! over hashed character n-grams, trained from history and from the
//! catalogue's own words.

use std::collections::HashMap;
use std::sync::Arc;

use super::text::{BUCKETS, Feature, Fields, SEP};
use super::{Example, LOCAL, Rules};
use crate::domain::catalogue::Catalogue;
use crate::domain::types::DepartmentKind;

/// Tuning constants. [`Params::default`] holds the values chosen by
/// cross-validation; a model keeps the ones it was trained with.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Weight of an n-gram that occurs in the title (content n-grams weigh 1).
    pub title_weight: f32,
    /// Weight of an n-gram that occurs only in the address.
    pub address_weight: f32,
    /// How much a catalogue keyword, name or description counts as a
    /// training document, relative to one historic ticket.
    pub keyword_weight: f32,
    /// Logit added to a department for each distinct catalogue keyword that
    /// matched (the rules), times 1 for two characters up to 2 for six.
    pub rule_weight: f32,
    /// Initial learning rate of the stochastic gradient descent.
    pub learning_rate: f32,
    /// L2 regularisation.
    pub l2: f32,
    /// Gradient steps wanted: epochs are `steps / documents`, clamped to
    /// `min_epochs..=max_epochs`, so a thin history is revisited often and a
    /// large one is read only `min_epochs` times.
    pub steps: usize,
    pub min_epochs: usize,
    pub max_epochs: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            title_weight: 2.0,
            address_weight: 0.5,
            keyword_weight: 1.0,
            rule_weight: 0.5,
            learning_rate: 2.0,
            l2: 1e-5,
            steps: 40_000,
            min_epochs: 2,
            max_epochs: 30,
        }
    }
}

/// A trained classifier. Cloning copies a pointer.
#[derive(Clone)]
pub struct Model(pub(super) Arc<Trained>);

pub(super) struct Trained {
    params: Params,
    /// Functional department codes, then [`LOCAL`].
    pub(super) classes: Vec<String>,
    /// `BUCKETS × classes.len()` weights, one row per hashed feature.
    pub(super) weights: Vec<f32>,
    bias: Vec<f32>,
    examples: usize,
    skipped: usize,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("classes", &self.0.classes.len())
            .field("examples", &self.0.examples)
            .field("skipped", &self.0.skipped)
            .finish()
    }
}

impl Model {
    /// Learns from `examples` (labelled with department codes, district codes
    /// included) and from the catalogue's keywords, topic names and
    /// descriptions. Deterministic: the same input gives the same model.
    pub fn train(examples: impl IntoIterator<Item = Example>, catalogue: &Catalogue) -> Model {
        Model::train_with(examples, catalogue, Params::default())
    }

    pub fn train_with(
        examples: impl IntoIterator<Item = Example>,
        catalogue: &Catalogue,
        params: Params,
    ) -> Model {
        let rules = Rules::new(catalogue);
        let local = rules.classes.len() - 1;
        let index: HashMap<&str, usize> = catalogue
            .departments
            .iter()
            .map(|d| {
                let class = match d.kind {
                    DepartmentKind::Functional => rules.class_of(d.code.as_str()),
                    DepartmentKind::District => None,
                };
                (d.code.as_str(), class.unwrap_or(local))
            })
            .chain([(LOCAL, local)])
            .collect();

        let mut corpus = Corpus::default();
        let (mut used, mut skipped) = (0, 0);
        for ex in examples {
            match index.get(ex.department.as_str()) {
                Some(&c) => {
                    corpus.push(&ex.title, &ex.content, ex.address.as_deref(), c, 1.0);
                    used += 1;
                }
                None => skipped += 1,
            }
        }
        // The catalogue as pseudo-documents: every keyword, topic name and
        // description speaks for its department, so a service with no
        // history yet routes by its catalogue alone.
        for t in &catalogue.topics {
            let Some(&c) = index.get(t.department.as_str()) else {
                continue;
            };
            let w = params.keyword_weight;
            for k in &t.keywords {
                corpus.push("", k, None, c, w);
            }
            corpus.push(&t.name, "", None, c, w);
            if let Some(d) = &t.description {
                corpus.push("", d, None, c, w);
            }
        }
        let (weights, bias) = corpus.fit(rules.classes.len(), &params);
        Model(Arc::new(Trained {
            params,
            classes: rules.classes,
            weights,
            bias,
            examples: used,
            skipped,
        }))
    }

    /// Examples the model learned from (catalogue pseudo-documents excluded).
    pub fn examples(&self) -> usize {
        self.0.examples
    }

    /// Examples left out because their department is not in the catalogue.
    pub fn skipped(&self) -> usize {
        self.0.skipped
    }

    pub fn params(&self) -> &Params {
        &self.0.params
    }

    /// Class scores (logits) of a featurised appeal.
    pub(super) fn logits(&self, feats: &[Feature]) -> Vec<f32> {
        let t = &*self.0;
        let n = t.classes.len();
        let mut z = t.bias.clone();
        let norm = feats
            .iter()
            .map(|f| f.weight * f.weight)
            .sum::<f32>()
            .sqrt();
        if norm > 0.0 {
            for f in feats {
                let x = f.weight / norm;
                for (s, w) in z.iter_mut().zip(&t.weights[f.bucket as usize * n..][..n]) {
                    *s += x * w;
                }
            }
        }
        z
    }
}

/// Training documents kept compactly (normalised text as UTF-16 code units,
/// about 2 bytes a character) so that the gradient descent can revisit them
/// in a shuffled order without holding every feature vector.
#[derive(Default)]
struct Corpus {
    text: Vec<u16>,
    docs: Vec<Doc>,
    scratch: Vec<char>,
}

struct Doc {
    start: usize,
    end: usize,
    title_end: u32,
    content_end: u32,
    class: u32,
    weight: f32,
}

impl Corpus {
    fn push(
        &mut self,
        title: &str,
        content: &str,
        address: Option<&str>,
        class: usize,
        weight: f32,
    ) {
        let fields = Fields::new(title, content, address, &mut self.scratch);
        let start = self.text.len();
        self.text.extend(
            self.scratch
                .iter()
                .map(|&c| u16::try_from(u32::from(c)).unwrap_or(0xFFFD)),
        );
        self.docs.push(Doc {
            start,
            end: self.text.len(),
            title_end: fields.title_end as u32,
            content_end: fields.content_end as u32,
            class: class as u32,
            weight,
        });
    }

    /// Multinomial logistic regression by stochastic gradient descent with
    /// a decaying rate, over L2-normalised feature vectors; shuffled with a
    /// fixed seed so that training is deterministic.
    fn fit(&mut self, n: usize, p: &Params) -> (Vec<f32>, Vec<f32>) {
        let mut w = vec![0f32; BUCKETS * n];
        let mut b = vec![0f32; n];
        if self.docs.is_empty() {
            return (w, b);
        }
        let epochs = (p.steps / self.docs.len()).clamp(p.min_epochs, p.max_epochs);
        let mut order: Vec<u32> = (0..self.docs.len() as u32).collect();
        let mut rng = Lcg(0x5eed);
        let mut text = Vec::new();
        let mut feats = Vec::new();
        let mut g = vec![0f32; n];
        let mut t = 0f32;
        for _ in 0..epochs {
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i + 1));
            }
            for &d in &order {
                let doc = &self.docs[d as usize];
                text.clear();
                text.extend(
                    self.text[doc.start..doc.end]
                        .iter()
                        .map(|&u| char::from_u32(u32::from(u)).unwrap_or(SEP)),
                );
                let fields = Fields {
                    title_end: doc.title_end as usize,
                    content_end: doc.content_end as usize,
                };
                fields.features(&text, p, &mut feats);
                let norm = feats
                    .iter()
                    .map(|f| f.weight * f.weight)
                    .sum::<f32>()
                    .sqrt();
                if norm == 0.0 {
                    continue;
                }
                t += 1.0;
                let eta = p.learning_rate / (1.0 + p.learning_rate * p.l2 * t);
                g.copy_from_slice(&b);
                for f in &feats {
                    let x = f.weight / norm;
                    for (s, wv) in g.iter_mut().zip(&w[f.bucket as usize * n..][..n]) {
                        *s += x * wv;
                    }
                }
                softmax(&mut g);
                g[doc.class as usize] -= 1.0;
                let step = eta * doc.weight;
                let decay = 1.0 - eta * p.l2;
                for f in &feats {
                    let x = step * f.weight / norm;
                    for (wv, gv) in w[f.bucket as usize * n..][..n].iter_mut().zip(&g) {
                        *wv = *wv * decay - x * gv;
                    }
                }
                for (bv, gv) in b.iter_mut().zip(&g) {
                    *bv -= 0.1 * step * gv;
                }
            }
        }
        (w, b)
    }
}

/// In place: logits to probabilities.
pub(super) fn softmax(z: &mut [f32]) {
    let top = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = (*v - top).exp();
        sum += *v;
    }
    for v in z.iter_mut() {
        *v /= sum;
    }
}

/// A small deterministic generator for the shuffles (no `rand` in the domain).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}
