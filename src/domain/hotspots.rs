//! Hotspots (苗头性、倾向性、普遍性问题): clusters of appeals about the same
//! catalogue topic from the same place within a sliding time window. Pure:
//! the job reads the appeals, this finds the clusters, the store keeps them.
//!
//! Two appeals are *near* when they share a topic and either the same
//! district and place key (小区, street…) or, both having coordinates, lie
//! within `radius_m` of one point. A cluster is the union of every *dense
//! window*: at least `min_appeals` near appeals whose creation times span at
//! most `window` — for coordinates, all within `radius_m` of one appeal. Dense
//! windows that share an appeal are one cluster, so a problem that goes on
//! for days stays one cluster while it stays dense.

mod place;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};

use super::calendar::city_tz;
use super::notify::{Audience, Notice};
pub use place::{Matcher, place_key};

/// The thresholds of a hotspot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// Appeals a cluster needs at least.
    pub min_appeals: usize,
    /// The longest time they may span.
    pub window: Duration,
    /// Coordinates within this distance (metres) of one appeal are near.
    pub radius_m: f64,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            min_appeals: 5,
            window: Duration::hours(48),
            radius_m: 500.0,
        }
    }
}

/// WGS84 degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub lat: f64,
    pub lon: f64,
}

const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle distance in metres.
pub fn haversine_m(a: Point, b: Point) -> f64 {
    let (p1, p2) = (a.lat.to_radians(), b.lat.to_radians());
    let dp = p2 - p1;
    let dl = (b.lon - a.lon).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// What an appeal contributes: its topic and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Appeal {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// A catalogue topic code.
    pub topic: String,
    pub district: Option<String>,
    /// From [`place_key`]; used only together with a district.
    pub place: Option<String>,
    pub point: Option<Point>,
}

/// A ticket as the job reads it.
#[derive(Debug, Clone, Copy)]
pub struct Raw<'a> {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub title: &'a str,
    pub content: &'a str,
    pub address: Option<&'a str>,
    pub district: Option<&'a str>,
    /// An Open311 request's service code: a catalogue topic already.
    pub service_code: Option<&'a str>,
    pub point: Option<Point>,
}

impl Matcher {
    /// The appeal's topic and place, or `None` when no topic matches.
    pub fn appeal(&self, r: &Raw<'_>) -> Option<Appeal> {
        let topic = r
            .service_code
            .filter(|c| self.topic_name(c).is_some())
            .or_else(|| self.topic(r.title, r.content))?;
        let district = r
            .district
            .filter(|d| self.is_district(d))
            .or_else(|| r.address.and_then(|a| self.district_in(a)))
            .or(r.district);
        Some(Appeal {
            id: r.id,
            at: r.at,
            topic: topic.to_owned(),
            district: district.map(str::to_owned),
            place: r.address.and_then(place_key),
            point: r
                .point
                .filter(|p| p.lat.abs() <= 90.0 && p.lon.abs() <= 180.0),
        })
    }
}

/// A cluster of appeals, members in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub topic: String,
    /// The district most members name.
    pub district: Option<String>,
    /// The place key most members share, else where their points are.
    pub place: String,
    /// Mean of the members' points, if any have one.
    pub centre: Option<Point>,
    pub ids: Vec<i64>,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.0[ra.max(rb)] = ra.min(rb);
        }
    }
}

/// Joins the members of every dense window of `seq` (indices into `appeals`,
/// in time order): `min` or more whose times span at most `window`.
fn join_dense(appeals: &[&Appeal], seq: &[usize], rules: &Rules, uf: &mut UnionFind) {
    let min = rules.min_appeals.max(1);
    let mut j = 0;
    // End of the members already joined, so each pair is joined once.
    let mut joined = 0;
    for i in 0..seq.len() {
        j = j.max(i);
        while j < seq.len() && appeals[seq[j]].at - appeals[seq[i]].at <= rules.window {
            j += 1;
        }
        if j - i >= min {
            for k in i.max(joined.max(1) - 1)..j - 1 {
                uf.union(seq[k], seq[k + 1]);
            }
            joined = joined.max(j);
        }
    }
}

/// Degrees of latitude and longitude a grid cell spans so that every point
/// within `radius_m` of a point lies in its cell or the eight around it.
fn cell_size(points: &[Point], radius_m: f64) -> (f64, f64) {
    let metres_per_degree = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
    let max_lat = points
        .iter()
        .map(|p| p.lat.abs())
        .fold(0.0, f64::max)
        .min(89.0);
    let dlat = radius_m / metres_per_degree;
    (dlat, dlat / max_lat.to_radians().cos())
}

/// The clusters among `appeals`, earliest first.
pub fn find(appeals: &[Appeal], rules: &Rules) -> Vec<Cluster> {
    let mut by_topic: BTreeMap<&str, Vec<&Appeal>> = BTreeMap::new();
    for a in appeals {
        by_topic.entry(&a.topic).or_default().push(a);
    }
    let mut out = Vec::new();
    for (_, mut group) in by_topic {
        group.sort_by_key(|a| (a.at, a.id));
        let mut uf = UnionFind((0..group.len()).collect());

        // Same district and place: indices in time order per place.
        let mut places: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
        for (i, a) in group.iter().enumerate() {
            if let (Some(d), Some(p)) = (&a.district, &a.place) {
                places.entry((d, p)).or_default().push(i);
            }
        }
        for seq in places.values() {
            join_dense(&group, seq, rules, &mut uf);
        }

        // Within the radius of each appeal that has a point, found through
        // a grid of cells about the radius wide.
        let located: Vec<(usize, Point)> = group
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.point.map(|p| (i, p)))
            .collect();
        if located.len() >= rules.min_appeals && rules.radius_m > 0.0 {
            let pts: Vec<Point> = located.iter().map(|&(_, p)| p).collect();
            let (dlat, dlon) = cell_size(&pts, rules.radius_m);
            let cell = |p: Point| ((p.lat / dlat).floor() as i64, (p.lon / dlon).floor() as i64);
            let mut grid: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
            for &(i, p) in &located {
                grid.entry(cell(p)).or_default().push(i);
            }
            for &(_, p) in &located {
                let (cy, cx) = cell(p);
                let mut near: Vec<usize> = Vec::new();
                for y in cy - 1..=cy + 1 {
                    for x in cx - 1..=cx + 1 {
                        for &k in grid.get(&(y, x)).into_iter().flatten() {
                            if group[k]
                                .point
                                .is_some_and(|q| haversine_m(p, q) <= rules.radius_m)
                            {
                                near.push(k);
                            }
                        }
                    }
                }
                if near.len() >= rules.min_appeals {
                    // Indices follow time order already.
                    near.sort_unstable();
                    join_dense(&group, &near, rules, &mut uf);
                }
            }
        }

        let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for i in 0..group.len() {
            let root = uf.find(i);
            members.entry(root).or_default().push(i);
        }
        for ids in members.into_values() {
            if ids.len() >= rules.min_appeals.max(2) {
                out.push(cluster(&group, &ids));
            }
        }
    }
    out.sort_by(|a, b| (a.first_at, &a.topic, a.ids[0]).cmp(&(b.first_at, &b.topic, b.ids[0])));
    out
}

/// The value most members have; on a tie, the earliest member's.
fn most_common<'a>(values: impl Iterator<Item = Option<&'a str>>) -> Option<&'a str> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for v in values.flatten() {
        match counts.iter_mut().find(|(x, _)| *x == v) {
            Some((_, n)) => *n += 1,
            None => counts.push((v, 1)),
        }
    }
    let max = counts.iter().map(|&(_, n)| n).max()?;
    counts.into_iter().find(|&(_, n)| n == max).map(|(v, _)| v)
}

fn cluster(group: &[&Appeal], idx: &[usize]) -> Cluster {
    let members: Vec<&Appeal> = idx.iter().map(|&i| group[i]).collect();
    let points: Vec<Point> = members.iter().filter_map(|a| a.point).collect();
    let centre = (!points.is_empty()).then(|| {
        let n = points.len() as f64;
        Point {
            lat: points.iter().map(|p| p.lat).sum::<f64>() / n,
            lon: points.iter().map(|p| p.lon).sum::<f64>() / n,
        }
    });
    let place = most_common(members.iter().map(|a| a.place.as_deref()))
        .map(str::to_owned)
        .or_else(|| centre.map(|c| format!("{:.4},{:.4}附近", c.lat, c.lon)))
        .unwrap_or_default();
    Cluster {
        topic: members[0].topic.clone(),
        district: most_common(members.iter().map(|a| a.district.as_deref())).map(str::to_owned),
        place,
        centre,
        ids: members.iter().map(|a| a.id).collect(),
        first_at: members[0].at,
        last_at: members[members.len() - 1].at,
    }
}

/// What the mail about a new hotspot says.
#[derive(Debug, Clone)]
pub struct HotspotFacts<'a> {
    pub topic_name: &'a str,
    /// The district's name ("青山湖区人民政府"), or empty.
    pub district_name: &'a str,
    pub place: &'a str,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    /// Ticket numbers with their titles.
    pub tickets: Vec<(&'a str, &'a str)>,
}

fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&city_tz())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// The notice to supervisors that a new hotspot formed.
pub fn notice(f: &HotspotFacts<'_>, base_url: &str) -> Notice {
    let area = format!(
        "{}{}",
        f.district_name.trim_end_matches("人民政府"),
        f.place
    );
    let list: Vec<String> = f
        .tickets
        .iter()
        .map(|(no, title)| format!("  {no}《{title}》"))
        .collect();
    Notice {
        kind: "hotspot",
        audience: Audience::Supervisors,
        subject: format!(
            "【12345热点预警】{area}「{}」诉求集中（{}件）",
            f.topic_name,
            f.tickets.len()
        ),
        body: format!(
            "{} 至 {}，{area}共有 {} 件「{}」诉求，可能是苗头性、倾向性问题，请关注研判：\n\n{}\n\n热点清单：{}/api/v1/hotspots\n\n12345政务服务便民热线",
            local(f.first_at),
            local(f.last_at),
            f.tickets.len(),
            f.topic_name,
            list.join("\n"),
            base_url.trim_end_matches('/'),
        ),
    }
}

#[cfg(test)]
#[path = "hotspots_tests.rs"]
mod tests;
