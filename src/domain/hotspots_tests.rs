use chrono::Duration;

use super::*;
use crate::domain::catalogue::Catalogue;
use crate::domain::testkit::at;

fn appeal(id: i64, hours: i64, topic: &str, district: &str, place: &str) -> Appeal {
    Appeal {
        id,
        at: at(2026, 11, 20, 8, 0) + Duration::hours(hours),
        topic: topic.into(),
        district: Some(district.into()),
        place: Some(place.into()),
        point: None,
    }
}

fn located(id: i64, hours: i64, topic: &str, lat: f64, lon: f64) -> Appeal {
    Appeal {
        district: None,
        place: None,
        point: Some(Point { lat, lon }),
        ..appeal(id, hours, topic, "", "")
    }
}

/// `n` appeals about street lights at 幸福小区, `every` hours apart.
fn same_place(n: i64, every: i64) -> Vec<Appeal> {
    (1..=n)
        .map(|i| appeal(i, (i - 1) * every, "streetlights", "qingshanhu", "幸福小区"))
        .collect()
}

#[test]
fn five_appeals_on_one_topic_from_one_compound_in_48_hours_are_one_cluster() {
    let clusters = find(&same_place(5, 6), &Rules::default());
    assert_eq!(clusters.len(), 1);
    let c = &clusters[0];
    assert_eq!(c.topic, "streetlights");
    assert_eq!(c.district.as_deref(), Some("qingshanhu"));
    assert_eq!(c.place, "幸福小区");
    assert_eq!(c.ids, [1, 2, 3, 4, 5]);
    assert_eq!(c.first_at, at(2026, 11, 20, 8, 0));
    assert_eq!(c.last_at, at(2026, 11, 21, 8, 0));
    assert_eq!(c.centre, None);
}

#[test]
fn four_appeals_are_not_a_cluster() {
    assert!(find(&same_place(4, 1), &Rules::default()).is_empty());
}

#[test]
fn five_appeals_spread_over_three_days_are_not_a_cluster() {
    // 0, 18, 36, 54, 72 hours: no 48 hours hold five.
    assert!(find(&same_place(5, 18), &Rules::default()).is_empty());
}

#[test]
fn the_window_slides_past_an_old_appeal() {
    let mut a = same_place(5, 1);
    a.push(appeal(9, -72, "streetlights", "qingshanhu", "幸福小区"));
    let clusters = find(&a, &Rules::default());
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0].ids, [1, 2, 3, 4, 5]);
}

#[test]
fn a_problem_that_stays_dense_stays_one_cluster() {
    // One appeal every 10 hours for four days: every 48 hours hold five.
    let clusters = find(&same_place(10, 10), &Rules::default());
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0].ids.len(), 10);
}

#[test]
fn different_topics_are_not_a_cluster() {
    let mut a = same_place(3, 1);
    a.push(appeal(4, 4, "water_outage", "qingshanhu", "幸福小区"));
    a.push(appeal(5, 5, "water_outage", "qingshanhu", "幸福小区"));
    assert!(find(&a, &Rules::default()).is_empty());
}

#[test]
fn the_same_compound_name_in_another_district_is_another_place() {
    let mut a = same_place(3, 1);
    a.push(appeal(4, 4, "streetlights", "donghu", "幸福小区"));
    a.push(appeal(5, 5, "streetlights", "donghu", "幸福小区"));
    assert!(find(&a, &Rules::default()).is_empty());
}

#[test]
fn five_appeals_within_500_metres_are_a_cluster() {
    // About 100 m apart (0.0009° of latitude), 400 m end to end.
    let a: Vec<Appeal> = (0..5)
        .map(|i| {
            located(
                i + 1,
                i,
                "manhole_covers",
                28.68 + 0.0009 * i as f64,
                115.89,
            )
        })
        .collect();
    let clusters = find(&a, &Rules::default());
    assert_eq!(clusters.len(), 1);
    let c = &clusters[0];
    assert_eq!(c.ids, [1, 2, 3, 4, 5]);
    assert_eq!(c.district, None);
    assert_eq!(c.place, "28.6818,115.8900附近");
    let centre = c.centre.expect("centre");
    assert!((centre.lat - 28.6818).abs() < 1e-9);
}

#[test]
fn five_appeals_a_kilometre_apart_are_not_a_cluster() {
    let a: Vec<Appeal> = (0..5)
        .map(|i| located(i + 1, i, "manhole_covers", 28.68 + 0.009 * i as f64, 115.89))
        .collect();
    assert!(find(&a, &Rules::default()).is_empty());
}

#[test]
fn points_and_places_join_one_cluster() {
    // Three appeals from the compound's register, four pinned on a map next
    // to it, and one that does both.
    let mut a = same_place(3, 1);
    for (id, lat) in [(4, 28.70), (5, 28.7005), (6, 28.7002), (7, 28.7008)] {
        a.push(located(id, id, "streetlights", lat, 115.95));
    }
    let mut both = located(8, 8, "streetlights", 28.701, 115.9505);
    both.district = Some("qingshanhu".into());
    both.place = Some("幸福小区".into());
    a.push(both);
    // The points are five (4–8); the place only four (1, 2, 3, 8).
    let clusters = find(&a, &Rules::default());
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0].ids, [4, 5, 6, 7, 8]);
    assert_eq!(clusters[0].place, "幸福小区");
    assert_eq!(clusters[0].district.as_deref(), Some("qingshanhu"));
    // A fifth from the place makes it dense too, and appeal 8 joins both.
    a.push(appeal(9, 9, "streetlights", "qingshanhu", "幸福小区"));
    let clusters = find(&a, &Rules::default());
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0].ids, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
}

#[test]
fn haversine_matches_known_distances() {
    let a = Point {
        lat: 28.68,
        lon: 115.89,
    };
    let north = Point {
        lat: 28.69,
        lon: 115.89,
    };
    let d = haversine_m(a, north);
    assert!((d - 1112.0).abs() < 2.0, "{d}");
    assert_eq!(haversine_m(a, a), 0.0);
}

#[test]
fn place_keys_name_the_compound_or_street() {
    for (address, key) in [
        ("青山湖区幸福小区3栋", Some("幸福小区")),
        ("青山湖区幸福小区5栋2单元501室", Some("幸福小区")),
        ("江西省南昌市青山湖区幸福小区东门", Some("幸福小区")),
        ("幸福小区", Some("幸福小区")),
        ("西湖区丁公路南浔花园5栋", Some("南浔花园")),
        ("南昌市东湖区八一大道123号", Some("八一大道")),
        ("东湖区八一路口", Some("八一路")),
        ("东湖区花园路8号", Some("花园路")),
        ("红谷滩区凤凰洲街道绿地新都会小区", Some("绿地新都会小区")),
        ("新建区长堎镇", Some("长堎镇")),
        ("湾里区招贤镇桃源村", Some("桃源村")),
        ("青云谱区洪都街道", Some("洪都街道")),
        ("东湖区滨江路街道", Some("滨江路街道")),
        ("东湖区华润超市旁", None),
        ("青山湖区", None),
        ("", None),
        ("青山湖区 幸福小区 ３栋", Some("幸福小区")),
    ] {
        assert_eq!(place_key(address).as_deref(), key, "{address}");
    }
}

fn matcher() -> Matcher {
    let c = Catalogue::parse(include_str!("../../config/catalogue.toml")).expect("catalogue");
    Matcher::new(&c)
}

#[test]
fn topics_come_from_catalogue_keywords() {
    let m = matcher();
    assert_eq!(
        m.topic("路灯不亮", "八一大道的路灯坏了"),
        Some("streetlights")
    );
    // The longer keyword hides the one inside it.
    assert_eq!(
        m.topic("小区路灯不亮", "幸福小区的小区路灯坏了一个月"),
        Some("property_management")
    );
    assert_eq!(m.topic("表扬", "感谢热线"), None);
    assert_eq!(m.topic_name("streetlights"), Some("道路路灯"));
    // Catch-all topics name a department, not a problem.
    assert_eq!(m.topic_name("other_housing"), None);
}

#[test]
fn an_appeal_takes_its_district_from_the_address_when_not_given() {
    let m = matcher();
    let raw = Raw {
        id: 1,
        at: at(2026, 11, 20, 8, 0),
        title: "路灯不亮",
        content: "晚上一片漆黑",
        address: Some("青山湖区幸福小区3栋"),
        district: None,
        service_code: None,
        point: None,
    };
    let a = m.appeal(&raw).expect("a topic");
    assert_eq!(a.topic, "streetlights");
    assert_eq!(a.district.as_deref(), Some("qingshanhu"));
    assert_eq!(a.place.as_deref(), Some("幸福小区"));
    // An Open311 service code is the topic.
    let open311 = Raw {
        service_code: Some("manhole_covers"),
        title: "问题",
        content: "见图",
        ..raw
    };
    assert_eq!(m.appeal(&open311).expect("topic").topic, "manhole_covers");
    let nothing = Raw {
        title: "感谢",
        content: "谢谢",
        ..raw
    };
    assert_eq!(m.appeal(&nothing), None);
}

#[test]
fn the_notice_goes_to_supervisors_with_the_tickets() {
    let n = notice(
        &HotspotFacts {
            topic_name: "道路路灯",
            district_name: "青山湖区人民政府",
            place: "幸福小区",
            first_at: at(2026, 11, 20, 8, 0),
            last_at: at(2026, 11, 21, 9, 30),
            tickets: vec![("20261120H000001", "路灯不亮"); 5],
        },
        "http://x/",
    );
    assert_eq!(n.audience, Audience::Supervisors);
    assert_eq!(
        n.subject,
        "【12345热点预警】青山湖区幸福小区「道路路灯」诉求集中（5件）"
    );
    assert!(
        n.body.contains("2026-11-20 08:00 至 2026-11-21 09:30"),
        "{}",
        n.body
    );
    assert!(n.body.contains("20261120H000001《路灯不亮》"));
    assert!(n.body.contains("http://x/api/v1/hotspots"));
}
