//! The dispatch catalogue (派单目录): departments and the topics that route
//! to them. Parsed and checked here; `config/catalogue.toml` holds the data.

use std::collections::HashSet;

use serde::Deserialize;

use super::types::{DepartmentCode, DepartmentKind};

/// A topic whose `department` is this goes to the appeal's own district.
pub const DISTRICT_TARGET: &str = "@district";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueDepartment {
    pub code: DepartmentCode,
    pub name: String,
    pub kind: DepartmentKind,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    pub code: String,
    pub name: String,
    pub department: String,
    pub keywords: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    pub departments: Vec<CatalogueDepartment>,
    #[serde(default)]
    pub topics: Vec<Topic>,
}

impl Catalogue {
    pub fn parse(text: &str) -> Result<Catalogue, String> {
        let c: Catalogue = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut codes = HashSet::new();
        for d in &c.departments {
            if !codes.insert(d.code.as_str()) {
                return Err(format!("department `{}` is listed twice", d.code));
            }
        }
        let mut topics = HashSet::new();
        for t in &c.topics {
            if !topics.insert(t.code.as_str()) {
                return Err(format!("topic `{}` is listed twice", t.code));
            }
            if t.department != DISTRICT_TARGET && !codes.contains(t.department.as_str()) {
                return Err(format!(
                    "topic `{}` names unknown department `{}`",
                    t.code, t.department
                ));
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalogue_is_valid_and_complete() {
        let text = include_str!("../../config/catalogue.toml");
        let c = Catalogue::parse(text).unwrap();
        assert_eq!(c.departments.len(), 28);
        let districts = c
            .departments
            .iter()
            .filter(|d| d.kind == DepartmentKind::District)
            .count();
        assert_eq!(districts, 9);
        assert!(c.topics.iter().all(|t| !t.keywords.is_empty()));
    }

    #[test]
    fn unknown_departments_in_topics_are_refused() {
        let bad = r#"
            [[departments]]
            code = "water"
            name = "水务"
            kind = "functional"
            [[topics]]
            code = "x"
            name = "x"
            department = "gas"
            keywords = ["燃气"]
        "#;
        assert!(Catalogue::parse(bad).unwrap_err().contains("gas"));
    }
}
