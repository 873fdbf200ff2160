use std::sync::OnceLock;

use super::*;

fn catalogue() -> &'static Catalogue {
    static C: OnceLock<Catalogue> = OnceLock::new();
    C.get_or_init(|| Catalogue::parse(include_str!("../../config/catalogue.toml")).unwrap())
}

/// A router that knows only the shipped catalogue (no history): what the
/// rules and the keyword pseudo-documents alone decide.
fn catalogue_router() -> &'static Router {
    static R: OnceLock<Router> = OnceLock::new();
    R.get_or_init(|| Router::new(catalogue(), Model::train([], catalogue())))
}

fn appeal<'a>(title: &'a str, content: &'a str) -> Appeal<'a> {
    Appeal {
        title,
        content,
        district: None,
        address: None,
        channel: Channel::Hotline,
        category: Category::Complaint,
    }
}

fn top(router: &Router, a: &Appeal<'_>) -> String {
    router.route(a, 3)[0].department.clone()
}

fn example(title: &str, content: &str, department: &str) -> Example {
    Example {
        title: title.into(),
        content: content.into(),
        district: None,
        address: None,
        department: department.into(),
    }
}

/// The catalogue header's look-alike cases: (title, content, department).
const LOOK_ALIKES: [(&str, &str, &str); 18] = [
    (
        "电梯困人",
        "小区3栋电梯困人半小时，请尽快处理",
        "market_supervision",
    ),
    (
        "旧楼加装电梯",
        "我们楼想加装电梯，一楼住户反对，怎么办",
        "housing",
    ),
    (
        "维修资金",
        "电梯要大修，想动用维修资金，手续怎么走",
        "housing",
    ),
    ("饭店油烟", "楼下饭店油烟直接排到我家窗户", "ecology"),
    ("夜市噪音", "楼下夜市商铺音响开到半夜", "city_management"),
    ("夜间施工", "旁边工地夜间施工，吵得睡不着", "housing"),
    ("改装摩托炸街", "每晚都有改装摩托车炸街", "traffic_police"),
    ("公司欠薪", "公司拖欠工资三个月不发", "hrss"),
    ("单位不缴社保", "单位不缴社保，入职一年都没参保", "hrss"),
    ("社保缴费", "灵活就业人员社保缴费在哪里交", "tax"),
    ("居民医保缴费", "城乡居民医保缴费怎么交", "tax"),
    ("路灯不亮", "解放路上的路灯不亮好几天了", "municipal"),
    ("小区路灯", "我们小区路灯坏了，物业不修", "housing"),
    (
        "树枝遮挡路灯",
        "行道树树枝遮挡路灯，晚上很黑，请修剪",
        "landscaping",
    ),
    (
        "信号灯不亮",
        "路口信号灯不亮，车辆乱成一团",
        "traffic_police",
    ),
    (
        "转供电加价",
        "商场转供电加价，电费比居民价高很多",
        "market_supervision",
    ),
    ("驾校退费", "驾校不给退费", "transport"),
    ("驾驶证换证", "驾驶证到期换证在哪里办", "traffic_police"),
];

#[test]
fn look_alike_cases_go_where_the_catalogue_says() {
    let cases = LOOK_ALIKES;
    let router = catalogue_router();
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|&(title, content, want)| {
            let got = top(router, &appeal(title, content));
            (got != want).then(|| format!("{title}: want {want}, got {got}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_rules_alone_separate_the_look_alike_cases() {
    let rules = Rules::new(catalogue());
    let mut wrong = Vec::new();
    for (title, content, want) in LOOK_ALIKES {
        let mut text = Vec::new();
        let _ = Fields::new(title, content, None, &mut text);
        let votes = rules.evidence(&rules.matches(&text));
        let best = votes.iter().copied().fold(0.0, f32::max);
        let winners: Vec<&str> = (0..votes.len())
            .filter(|&c| votes[c] == best)
            .map(|c| rules.classes[c].as_str())
            .collect();
        if best == 0.0 || winners != [want] {
            wrong.push(format!("{title}: want {want}, rules say {winners:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn a_specific_keyword_hides_the_general_one_inside_it() {
    let rules = Rules::new(catalogue());
    let mut text = Vec::new();
    normalise_into("小区路灯不亮", &mut text);
    let words: Vec<String> = rules
        .matches(&text)
        .into_iter()
        .map(|k| rules.keywords[k].chars.iter().collect())
        .collect();
    assert!(words.contains(&"小区路灯".to_owned()), "{words:?}");
    assert!(!words.contains(&"路灯".to_owned()), "{words:?}");
}

#[test]
fn local_matters_go_to_the_district_named_in_the_address() {
    let mut a = appeal(
        "邻居占用楼道",
        "对门邻居在楼道堆放杂物，占用公共通道，希望社区调解",
    );
    a.address = Some("青山湖区某小区");
    let s = catalogue_router().route(&a, 3);
    assert_eq!(s[0].department, "qingshanhu", "{s:?}");
    assert!(s[0].reason.contains("青山湖区"), "{}", s[0].reason);
    assert!(s[0].reason.contains("按地址"), "{}", s[0].reason);

    // The registered district wins over the address.
    a.district = Some("anyi");
    assert_eq!(catalogue_router().route(&a, 1)[0].department, "anyi");
}

#[test]
fn without_any_district_no_district_is_suggested() {
    let a = appeal(
        "邻居占用楼道",
        "对门邻居在楼道堆放杂物，占用公共通道，希望社区调解",
    );
    let codes: Vec<&str> = catalogue()
        .departments
        .iter()
        .filter(|d| d.kind == DepartmentKind::District)
        .map(|d| d.code.as_str())
        .collect();
    let s = catalogue_router().route(&a, 30);
    assert!(!s.is_empty());
    assert!(
        s.iter()
            .all(|s| !codes.contains(&s.department.as_str()) && s.department != LOCAL),
        "{s:?}"
    );
}

#[test]
fn confidences_are_sorted_bounded_and_sum_to_at_most_one() {
    let mut a = appeal("停水", "我家从昨天开始停水，水压也很低，什么时候恢复供水");
    a.district = Some("xihu");
    let s = catalogue_router().route(&a, 100);
    assert_eq!(s.len(), 20, "19 functional departments and the district");
    assert!(s.windows(2).all(|w| w[0].confidence >= w[1].confidence));
    assert!(s.iter().all(|s| (0.0..=1.0).contains(&s.confidence)));
    let sum: f64 = s.iter().map(|s| s.confidence).sum();
    assert!(sum <= 1.0 + 1e-6 && sum > 0.99, "{sum}");
    assert_eq!(s[0].department, "water");
    assert!(s[0].reason.contains("停水"), "{}", s[0].reason);
    assert_eq!(catalogue_router().route(&a, 2).len(), 2);
}

#[test]
fn a_tiny_history_teaches_what_the_catalogue_does_not_know() {
    // 蓝鲸卡 is an invented card that only the history ties to transport.
    let a = appeal("蓝鲸卡刷不了", "我的蓝鲸卡今天突然刷不了了");
    assert_ne!(top(catalogue_router(), &a), "transport");
    let history = [
        example("蓝鲸卡充值失败", "蓝鲸卡在自助机充值不成功", "transport"),
        example("蓝鲸卡丢了", "蓝鲸卡丢了怎么补办", "transport"),
        example("蓝鲸卡余额不对", "蓝鲸卡里的余额少了二十块", "transport"),
        example("办理蓝鲸卡", "蓝鲸卡在哪里可以办理", "transport"),
    ];
    let model = Model::train(history, catalogue());
    assert_eq!(model.examples(), 4);
    let router = Router::new(catalogue(), model);
    let s = router.route(&a, 3);
    assert_eq!(s[0].department, "transport", "{s:?}");
    assert!(s[0].reason.contains("蓝鲸"), "{}", s[0].reason);
}

#[test]
fn district_labels_train_the_local_class_and_unknown_labels_are_skipped() {
    let history = [
        example("村里修路", "村里那条路坑坑洼洼，请镇里修一修", "jinxian"),
        example("没有这个部门", "随便写点什么", "no_such_department"),
    ];
    let model = Model::train(history, catalogue());
    assert_eq!((model.examples(), model.skipped()), (1, 1));
}

#[test]
fn training_and_routing_are_deterministic() {
    let history = || {
        [
            example("路灯不亮", "解放路路灯不亮", "municipal"),
            example("公交太少", "公交发车间隔太长", "transport"),
            example("油烟扰民", "饭店油烟太大", "ecology"),
        ]
    };
    let a = appeal("晚上很黑", "解放路晚上很黑，公交站旁边的灯也坏了");
    let one = Router::new(catalogue(), Model::train(history(), catalogue())).route(&a, 5);
    let two = Router::new(catalogue(), Model::train(history(), catalogue())).route(&a, 5);
    assert_eq!(one, two);
}

#[test]
fn cloning_a_model_or_router_shares_the_weights() {
    let router = catalogue_router().clone();
    assert!(Arc::ptr_eq(&router.model.0, &catalogue_router().model.0));
    assert!(Arc::ptr_eq(&router.rules, &catalogue_router().rules));
}

#[test]
fn typos_and_full_width_text_are_normalised() {
    let mut text = Vec::new();
    normalise_into("ＡＢ１２，燃气！ ", &mut text);
    assert_eq!(text, vec!['a', 'b', '1', '2', SEP, '燃', '气', SEP]);
    // A typo (然气 for 燃气) still routes by the grams it shares.
    let a = appeal("厨房有然气味", "厨房里一股然气味，怀疑漏气");
    assert_eq!(top(catalogue_router(), &a), "gas");
}
