//! One answer, two formats: a small tree rendered as JSON or as XML by the
//! spec's "Spark convention" (a list's JSON array is an XML element holding
//! one child element per item), and the spec's error bodies.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// The format a path's extension names; `None` for any other.
    pub fn parse(ext: &str) -> Option<Format> {
        match ext {
            "json" => Some(Format::Json),
            "xml" => Some(Format::Xml),
            _ => None,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json; charset=utf-8",
            Format::Xml => "text/xml; charset=utf-8",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `None` is JSON `null` and an empty XML element.
    Text(Option<String>),
    Bool(bool),
    Int(i64),
    Float(Option<f64>),
    /// A JSON array; in XML, one element per entry, named by the `&str`.
    List(&'static str, Vec<Node>),
    Obj(Vec<(&'static str, Node)>),
}

impl Node {
    pub fn text(s: impl Into<String>) -> Node {
        Node::Text(Some(s.into()))
    }

    pub fn opt(s: Option<impl Into<String>>) -> Node {
        Node::Text(s.map(Into::into))
    }

    fn json(&self) -> Value {
        match self {
            Node::Text(s) => s.clone().map(Value::String).unwrap_or(Value::Null),
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::from(*i),
            Node::Float(f) => f
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Node::List(_, items) => Value::Array(items.iter().map(Node::json).collect()),
            Node::Obj(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.json()))
                    .collect::<Map<_, _>>(),
            ),
        }
    }

    fn xml(&self, name: &str, out: &mut String) {
        let inner = match self {
            Node::Text(None) | Node::Float(None) => None,
            Node::Text(Some(s)) => Some(escape(s)),
            Node::Bool(b) => Some(b.to_string()),
            Node::Int(i) => Some(i.to_string()),
            Node::Float(Some(f)) => Some(f.to_string()),
            Node::List(item, items) => {
                let mut s = String::new();
                for i in items {
                    i.xml(item, &mut s);
                }
                Some(s)
            }
            Node::Obj(fields) => {
                let mut s = String::new();
                for (k, v) in fields {
                    v.xml(k, &mut s);
                }
                Some(s)
            }
        };
        match inner {
            Some(s) if !s.is_empty() => {
                out.push_str(&format!("<{name}>{s}</{name}>"));
            }
            _ => out.push_str(&format!("<{name}/>")),
        }
    }

    /// The document: `root` names the XML root element (JSON has none).
    pub fn render(&self, root: &str, fmt: Format) -> String {
        match fmt {
            Format::Json => self.json().to_string(),
            Format::Xml => {
                let mut s = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
                self.xml(root, &mut s);
                s.push('\n');
                s
            }
        }
    }
}

/// Text escaped for XML; characters XML 1.0 cannot hold at all become U+FFFD.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

pub fn respond(status: StatusCode, root: &str, node: &Node, fmt: Format) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(fmt.content_type())
        .body(node.render(root, fmt))
}

/// A refusal in the spec's form: an HTTP status and a list of
/// `{code, description}`, the code being the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: u16,
    pub descriptions: Vec<String>,
}

impl Failure {
    pub fn new(status: u16, description: impl Into<String>) -> Failure {
        Failure {
            status,
            descriptions: vec![description.into()],
        }
    }

    pub fn bad_request(description: impl Into<String>) -> Failure {
        Failure::new(400, description)
    }

    pub fn not_found(description: impl Into<String>) -> Failure {
        Failure::new(404, description)
    }

    pub fn forbidden(description: impl Into<String>) -> Failure {
        Failure::new(403, description)
    }

    pub fn response(&self, fmt: Format) -> HttpResponse {
        let errors = Node::List(
            "error",
            self.descriptions
                .iter()
                .map(|d| {
                    Node::Obj(vec![
                        ("code", Node::Int(i64::from(self.status))),
                        ("description", Node::text(d.as_str())),
                    ])
                })
                .collect(),
        );
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        respond(status, "errors", &errors, fmt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_arrays_in_json_and_repeated_elements_in_xml() {
        let n = Node::List(
            "service",
            vec![Node::Obj(vec![
                ("service_code", Node::text("a&b")),
                ("metadata", Node::Bool(false)),
                ("group", Node::Text(None)),
                ("lat", Node::Float(Some(28.5))),
            ])],
        );
        let json: Value = serde_json::from_str(&n.render("services", Format::Json)).unwrap();
        assert_eq!(
            json,
            serde_json::json!([{"service_code": "a&b", "metadata": false, "group": null, "lat": 28.5}])
        );
        assert_eq!(
            n.render("services", Format::Xml),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<services><service>\
             <service_code>a&amp;b</service_code><metadata>false</metadata><group/>\
             <lat>28.5</lat></service></services>\n"
        );
        assert_eq!(
            Node::List("x", vec![]).render("xs", Format::Xml),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<xs/>\n"
        );
    }

    #[test]
    fn xml_text_is_escaped_and_stripped_of_what_xml_cannot_hold() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>\u{1}\n"),
            "&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;\u{FFFD}\n"
        );
    }
}
