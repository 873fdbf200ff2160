//! `hotline route-eval` (train on one JSONL file, evaluate on another or by
//! k-fold cross-validation) and `hotline bench route` (routing latency and
//! retraining time on a million synthetic tickets). The last line of an
//! evaluation is always `accuracy=… top3=… n=…`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

use crate::config::Settings;
use crate::domain::catalogue::Catalogue;
use crate::domain::router::{Appeal, Example, Model, Router};
use crate::domain::types::{Category, Channel};
use crate::startup::StartupError;

#[derive(Args, Debug)]
pub struct RouteEvalArgs {
    /// Labelled appeals to train on (JSON Lines, the shared corpus format).
    #[arg(long)]
    train: PathBuf,
    /// Labelled appeals to predict; omit with --kfold.
    #[arg(long, required_unless_present = "kfold", conflicts_with = "kfold")]
    test: Option<PathBuf>,
    /// Cross-validate on --train with this many folds instead.
    #[arg(long)]
    kfold: Option<usize>,
    /// Seed of the k-fold shuffle.
    #[arg(long, default_value_t = 12345)]
    seed: u64,
    /// Dispatch catalogue (default: the configured one).
    #[arg(long)]
    catalogue: Option<PathBuf>,
    /// Also print every appeal routed wrongly.
    #[arg(long)]
    errors: bool,
}

#[derive(Args, Debug)]
pub struct BenchRouteArgs {
    /// Labelled appeals: the model for the latency run is trained on them,
    /// and the synthetic history is recombined from their sentences.
    #[arg(long, default_value = "../shared/data/appeals-train.jsonl")]
    corpus: PathBuf,
    /// Dispatch catalogue (default: the configured one).
    #[arg(long)]
    catalogue: Option<PathBuf>,
    /// Synthetic historic tickets to retrain on.
    #[arg(long, default_value_t = 1_000_000)]
    tickets: usize,
    /// Times every corpus appeal is routed in the latency run.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
}

/// One line of a labelled JSONL file.
#[derive(Debug, Clone, Deserialize)]
struct Record {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    district: Option<String>,
    #[serde(default)]
    address: Option<String>,
    title: String,
    content: String,
    department: String,
}

impl Record {
    fn appeal(&self) -> Appeal<'_> {
        Appeal {
            title: &self.title,
            content: &self.content,
            district: self.district.as_deref(),
            address: self.address.as_deref(),
            channel: parse_or(&self.channel, Channel::Hotline),
            category: parse_or(&self.category, Category::Consult),
        }
    }

    fn example(&self) -> Example {
        Example {
            title: self.title.clone(),
            content: self.content.clone(),
            district: self.district.clone(),
            address: self.address.clone(),
            department: self.department.clone(),
        }
    }
}

fn parse_or<T: std::str::FromStr>(s: &Option<String>, default: T) -> T {
    s.as_deref().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn err(e: impl std::fmt::Display) -> StartupError {
    StartupError::Bootstrap(e.to_string())
}

fn read_jsonl(path: &Path) -> Result<Vec<Record>, StartupError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| err(format!("{}:{}: {e}", path.display(), i + 1)))
        })
        .collect()
}

fn load_catalogue(settings: &Settings, path: Option<&Path>) -> Result<Catalogue, StartupError> {
    match path {
        None => Ok(settings.load_catalogue()?),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).map_err(|e| err(format!("{}: {e}", p.display())))?;
            Catalogue::parse(&text).map_err(|e| err(format!("{}: {e}", p.display())))
        }
    }
}

/// Predictions beside the gold labels.
#[derive(Default)]
struct Tally {
    n: usize,
    top1: usize,
    top3: usize,
    /// department → (gold count, predicted count, correct)
    per_department: BTreeMap<String, (usize, usize, usize)>,
    confusions: HashMap<(String, String), usize>,
    errors: Vec<String>,
}

impl Tally {
    fn route(&mut self, router: &Router, records: &[&Record], keep_errors: bool) {
        for r in records {
            let s = router.route(&r.appeal(), 3);
            let predicted = s.first().map_or("-", |s| s.department.as_str());
            self.n += 1;
            if predicted == r.department {
                self.top1 += 1;
            } else {
                *self
                    .confusions
                    .entry((r.department.clone(), predicted.to_owned()))
                    .or_default() += 1;
                if keep_errors {
                    self.errors.push(format!(
                        "{} gold={} predicted={} ({:.2}: {}) | {} | {}",
                        r.id.as_deref().unwrap_or("-"),
                        r.department,
                        predicted,
                        s.first().map_or(0.0, |s| s.confidence),
                        s.first().map_or("", |s| s.reason.as_str()),
                        r.title,
                        r.content
                    ));
                }
            }
            if s.iter().any(|s| s.department == r.department) {
                self.top3 += 1;
            }
            self.per_department
                .entry(r.department.clone())
                .or_default()
                .0 += 1;
            let p = self.per_department.entry(predicted.to_owned()).or_default();
            p.1 += 1;
            if predicted == r.department {
                p.2 += 1;
            }
        }
    }

    fn print(&self) {
        for e in &self.errors {
            println!("wrong: {e}");
        }
        println!(
            "{:<20} {:>5} {:>9} {:>7}",
            "department", "n", "precision", "recall"
        );
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        for (d, &(gold, predicted, correct)) in &self.per_department {
            println!(
                "{d:<20} {gold:>5} {:>9.3} {:>7.3}",
                ratio(correct, predicted),
                ratio(correct, gold)
            );
        }
        let mut pairs: Vec<_> = self.confusions.iter().collect();
        pairs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        println!("most frequent confusions (gold -> predicted):");
        for ((gold, predicted), count) in pairs.iter().take(10) {
            println!("  {gold} -> {predicted}: {count}");
        }
        println!(
            "accuracy={:.4} top3={:.4} n={}",
            ratio(self.top1, self.n),
            ratio(self.top3, self.n),
            self.n
        );
    }
}

pub fn run(settings: &Settings, args: RouteEvalArgs) -> Result<(), StartupError> {
    let catalogue = load_catalogue(settings, args.catalogue.as_deref())?;
    let train = read_jsonl(&args.train)?;
    let mut tally = Tally::default();
    let started = Instant::now();
    match (args.kfold, &args.test) {
        (Some(k), _) => {
            if k < 2 || k > train.len() {
                return Err(err(format!(
                    "--kfold must be between 2 and the number of appeals ({})",
                    train.len()
                )));
            }
            // A fixed shuffle, then every k-th appeal in the held-out fold.
            let mut order: Vec<usize> = (0..train.len()).collect();
            let mut rng = StdRng::seed_from_u64(args.seed);
            for i in (1..order.len()).rev() {
                order.swap(i, rng.gen_range(0..=i));
            }
            for fold in 0..k {
                let (held, kept): (Vec<_>, Vec<_>) =
                    order.iter().enumerate().partition(|(i, _)| i % k == fold);
                let model =
                    Model::train(kept.iter().map(|&(_, &j)| train[j].example()), &catalogue);
                let router = Router::new(&catalogue, model);
                let test: Vec<&Record> = held.iter().map(|&(_, &j)| &train[j]).collect();
                tally.route(&router, &test, args.errors);
            }
            println!(
                "route-eval: {k}-fold cross-validation over {} appeals of {}, catalogue of {} topics ({:.1}s)",
                train.len(),
                args.train.display(),
                catalogue.topics.len(),
                started.elapsed().as_secs_f64()
            );
        }
        (None, Some(test_path)) => {
            let test = read_jsonl(test_path)?;
            let model = Model::train(train.iter().map(Record::example), &catalogue);
            if model.skipped() > 0 {
                eprintln!(
                    "{} training appeals name a department outside the catalogue and were skipped",
                    model.skipped()
                );
            }
            let router = Router::new(&catalogue, model);
            tally.route(&router, &test.iter().collect::<Vec<_>>(), args.errors);
            println!(
                "route-eval: trained on {} appeals of {} and a catalogue of {} topics, tested on {} ({:.1}s)",
                train.len(),
                args.train.display(),
                catalogue.topics.len(),
                test_path.display(),
                started.elapsed().as_secs_f64()
            );
        }
        (None, None) => return Err(err("give --test <jsonl> or --kfold <k>")),
    }
    tally.print();
    Ok(())
}

/// `hotline bench route`: latency of one routing on one thread, then the
/// time to retrain on `tickets` synthetic historic tickets.
pub fn bench(settings: &Settings, args: BenchRouteArgs) -> Result<(), StartupError> {
    let catalogue = load_catalogue(settings, args.catalogue.as_deref())?;
    let corpus = read_jsonl(&args.corpus)?;
    if corpus.is_empty() {
        return Err(err("the corpus is empty"));
    }
    let router = Router::new(
        &catalogue,
        Model::train(corpus.iter().map(Record::example), &catalogue),
    );
    for r in &corpus {
        std::hint::black_box(router.route(&r.appeal(), 3));
    }
    let mut lat: Vec<Duration> = Vec::with_capacity(corpus.len() * args.rounds);
    for _ in 0..args.rounds {
        for r in &corpus {
            let t0 = Instant::now();
            std::hint::black_box(router.route(&r.appeal(), 3));
            lat.push(t0.elapsed());
        }
    }
    lat.sort_unstable();
    let q = |p: f64| {
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i].as_secs_f64() * 1e6
    };
    println!(
        "route latency appeals={} p50={:.0}us p99={:.0}us max={:.0}us (one thread, top 3 with reasons)",
        lat.len(),
        q(0.50),
        q(0.99),
        q(1.0)
    );

    let started = Instant::now();
    let model = Model::train(synthetic(&corpus, &catalogue, args.tickets), &catalogue);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "route retrain tickets={} seconds={secs:.1} rate={:.0}/s peak_rss={}",
        model.examples(),
        model.examples() as f64 / secs,
        peak_rss().unwrap_or_else(|| "unknown".into())
    );
    Ok(())
}

/// A department's appeals, their sentences and its catalogue keywords.
type Pool<'a> = (Vec<&'a Record>, Vec<&'a str>, Vec<&'a str>);

/// Historic tickets recombined from the corpus: the title of one appeal of
/// a department, two to four sentences from others of the same department,
/// now and then one of its catalogue keywords. Deterministic.
fn synthetic<'a>(
    corpus: &'a [Record],
    catalogue: &'a Catalogue,
    n: usize,
) -> impl Iterator<Item = Example> + 'a {
    let mut by_department: BTreeMap<&str, Pool<'a>> = BTreeMap::new();
    for r in corpus {
        let e = by_department.entry(r.department.as_str()).or_default();
        e.0.push(r);
        e.1.extend(
            r.content
                .split_inclusive(['。', '！', '？', '，', '；'])
                .filter(|s| s.chars().count() > 3),
        );
    }
    let district_codes: Vec<&str> = catalogue
        .departments
        .iter()
        .filter(|d| d.kind == crate::domain::types::DepartmentKind::District)
        .map(|d| d.code.as_str())
        .collect();
    for t in &catalogue.topics {
        let keys: Vec<&str> = if t.department == crate::domain::catalogue::DISTRICT_TARGET {
            district_codes.clone()
        } else {
            vec![t.department.as_str()]
        };
        for k in keys {
            if let Some(e) = by_department.get_mut(k) {
                e.2.extend(t.keywords.iter().map(String::as_str));
            }
        }
    }
    let pools: Vec<_> = by_department.into_values().collect();
    let mut rng = StdRng::seed_from_u64(7);
    (0..n).map(move |_| {
        let (records, sentences, keywords) = &pools[rng.gen_range(0..pools.len())];
        let base = records[rng.gen_range(0..records.len())];
        let mut content = String::new();
        for _ in 0..rng.gen_range(2..=4) {
            if !sentences.is_empty() {
                content.push_str(sentences[rng.gen_range(0..sentences.len())]);
            }
        }
        if !keywords.is_empty() && rng.gen_bool(0.3) {
            content.push_str(keywords[rng.gen_range(0..keywords.len())]);
            content.push('。');
        }
        Example {
            title: base.title.clone(),
            content,
            district: base.district.clone(),
            address: base.address.clone(),
            department: base.department.clone(),
        }
    })
}

/// The process's peak resident set (Linux), e.g. "412 MB".
fn peak_rss() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(format!("{} MB", kb / 1024))
}
