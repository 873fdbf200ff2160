//! The dispatch catalogue (派单目录): departments and the topics that route
//! to them. Parsed and checked here; `config/catalogue.toml` holds the data.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::types::{DepartmentCode, DepartmentKind};

/// A topic whose `department` is this goes to the appeal's own district.
pub const DISTRICT_TARGET: &str = "@district";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueDepartment {
    pub code: DepartmentCode,
    pub name: String,
    pub kind: DepartmentKind,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    pub code: String,
    pub name: String,
    pub department: String,
    pub keywords: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    pub departments: Vec<CatalogueDepartment>,
    #[serde(default)]
    pub topics: Vec<Topic>,
}

impl Catalogue {
    /// Reads and checks the TOML form (`config/catalogue.toml`).
    pub fn parse(text: &str) -> Result<Catalogue, String> {
        let c: Catalogue = toml::from_str(text).map_err(|e| e.to_string())?;
        match c.problems() {
            p if p.is_empty() => Ok(c),
            p => Err(p.join("; ")),
        }
    }

    /// Reads and checks the JSON form (the API's, and the stored versions').
    pub fn from_json(value: serde_json::Value) -> Result<Catalogue, Vec<String>> {
        let c: Catalogue = serde_json::from_value(value).map_err(|e| vec![e.to_string()])?;
        match c.problems() {
            p if p.is_empty() => Ok(c),
            p => Err(p),
        }
    }

    /// Everything wrong with a catalogue, however it was read (TOML file or
    /// JSON through the API); empty when it can be used.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.departments.is_empty() {
            out.push("the catalogue lists no departments".to_owned());
        }
        let mut codes = HashSet::new();
        for d in &self.departments {
            if !codes.insert(d.code.as_str()) {
                out.push(format!("department `{}` is listed twice", d.code));
            }
            if d.name.trim().is_empty() {
                out.push(format!("department `{}` has no name", d.code));
            }
            if d.email.as_deref().is_some_and(|e| !e.contains('@')) {
                out.push(format!(
                    "department `{}`: `email` is not an address",
                    d.code
                ));
            }
        }
        let mut topics = HashSet::new();
        for t in &self.topics {
            let code_ok = t.code.starts_with(|c: char| c.is_ascii_lowercase())
                && t.code.len() <= 64
                && t.code
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !code_ok {
                out.push(format!(
                    "topic `{}`: the code must be lowercase letters, digits and _ (at most 64)",
                    t.code.chars().take(64).collect::<String>()
                ));
            }
            if !topics.insert(t.code.as_str()) {
                out.push(format!("topic `{}` is listed twice", t.code));
            }
            if t.name.trim().is_empty() {
                out.push(format!("topic `{}` has no name", t.code));
            }
            if t.department != DISTRICT_TARGET && !codes.contains(t.department.as_str()) {
                out.push(format!(
                    "topic `{}` names unknown department `{}`",
                    t.code, t.department
                ));
            }
            if t.keywords.is_empty() {
                out.push(format!("topic `{}` has no keywords", t.code));
            }
            if t.keywords.iter().any(|k| k.trim().is_empty()) {
                out.push(format!("topic `{}` has an empty keyword", t.code));
            }
        }
        out
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

    #[test]
    fn every_problem_is_reported_at_once() {
        let bad = r#"
            [[departments]]
            code = "water"
            name = ""
            kind = "functional"
            [[topics]]
            code = "Leak"
            name = "漏水"
            department = "water"
            keywords = []
        "#;
        let err = Catalogue::parse(bad).unwrap_err();
        for part in ["no name", "code must be", "no keywords"] {
            assert!(err.contains(part), "{part}: {err}");
        }
    }
}
