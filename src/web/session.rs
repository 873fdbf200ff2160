//! The staff pages' session: log-in and log-out, the session cookie (the
//! API's own bearer token, HttpOnly, SameSite=Lax, Secure behind https),
//! the `PageUser` extractor, CSRF tokens for every form, and the home page.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use minijinja::{Value, context};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::page;
use crate::api::AppState;
use crate::api::auth::{self, Caller};
use crate::api::error::ApiError;
use crate::domain::types::Role;

pub const SESSION_COOKIE: &str = "hotline_session";
const LOGIN_CSRF_COOKIE: &str = "hotline_login_csrf";

/// A logged-in user of the pages.
pub struct PageUser {
    /// The same caller the API's handlers get: role, department, scope.
    pub caller: Caller,
    token: String,
    csrf: String,
}

impl PageUser {
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The CSRF token every form of this session must post as `csrf`.
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }

    /// Refuses a form post whose `csrf` field is not this session's token.
    pub fn check_csrf(&self, form: &FormData) -> Result<(), PageError> {
        let given = form.get("csrf");
        if constant_eq(given.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(PageError::Status(
                StatusCode::FORBIDDEN,
                "表单已过期或来源不明（CSRF 校验失败），请返回刷新页面后重试。".into(),
            ))
        }
    }

    /// What `base.html` needs for the navigation bar and every form:
    /// `me`, `nav`, `csrf` and `csrf_field`. Spread it into a page's context
    /// with `context! { title => …, ..user.base() }`.
    pub fn base(&self) -> Value {
        let c = &self.caller;
        context! {
            me => context! {
                username => c.username, role => c.role.as_str(), role_zh => role_zh(c.role),
                department => c.department,
            },
            nav => nav_links(c.role).into_iter()
                .map(|(href, label)| context! { href, label }).collect::<Vec<_>>(),
            csrf => self.csrf,
            csrf_field => csrf_field(self),
        }
    }
}

/// `<input type="hidden" name="csrf" …>` for a form, as safe HTML.
pub fn csrf_field(user: &PageUser) -> Value {
    Value::from_safe_string(format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        user.csrf
    ))
}

/// The CSRF token of a session: derived from its secret token, so it needs
/// no storage, differs per session, and does not reveal the token.
fn csrf_of(token: &str) -> String {
    hex::encode(Sha256::digest(format!("hotline-csrf:{token}").as_bytes()))
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn role_zh(r: Role) -> &'static str {
    match r {
        Role::Agent => "坐席",
        Role::Dispatcher => "派单员",
        Role::Handler => "承办人",
        Role::DeptHead => "部门负责人",
        Role::Supervisor => "督办人员",
        Role::Leader => "领导",
        Role::Admin => "管理员",
    }
}

/// The pages a role works in, in the order of its day.
pub fn nav_links(r: Role) -> Vec<(&'static str, &'static str)> {
    let mut links = vec![("/", "首页")];
    match r {
        Role::Agent => links.push(("/agent", "坐席受理")),
        Role::Dispatcher => {
            links.push(("/dispatch", "派单调度"));
            links.push(("/agent", "坐席受理"));
        }
        Role::Handler | Role::DeptHead => links.push(("/inbox", "部门工单")),
        Role::Supervisor | Role::Leader | Role::Admin => {}
    }
    if matches!(
        r,
        Role::Leader | Role::Supervisor | Role::Admin | Role::Dispatcher | Role::DeptHead
    ) {
        links.push(("/dashboard", "领导驾驶舱"));
    }
    links
}

/// A page could not be shown: not logged in (→ the log-in page), or an
/// error explained on a page of its own (never problem+json).
#[derive(Debug)]
pub enum PageError {
    Login(String),
    Status(StatusCode, String),
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::Login(next) => write!(f, "login required for {next}"),
            PageError::Status(s, m) => write!(f, "{s}: {m}"),
        }
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::Login(_) => StatusCode::SEE_OTHER,
            PageError::Status(s, _) => *s,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            PageError::Login(next) => redirect(&format!("/login?next={}", url_encode(next))),
            PageError::Status(s, m) => {
                let title = match s.as_u16() {
                    403 => "无权操作",
                    404 => "未找到",
                    _ => "出错了",
                };
                super::public::notice(*s, title, m)
            }
        }
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        let status = crate::api::error::status_of(e.code);
        PageError::Status(status, zh_error(&e))
    }
}

/// An API error in words for the page (the detail stays in English where
/// it names fields; the code's meaning comes first in Chinese).
pub fn zh_error(e: &ApiError) -> String {
    let lead = match e.code {
        "not_found" => "未找到该工单或您无权查看",
        "forbidden" => "您的角色不能执行此操作",
        "invalid_transition" => "工单当前状态不允许此操作",
        "validation_failed" => "填写内容有误",
        "conflict" => "工单正被他人修改，请重试",
        "unauthorized" => "用户名或密码错误",
        "rate_limited" => "操作过于频繁，请稍后再试",
        _ => "系统暂时无法完成操作",
    };
    if e.code == "internal" || e.detail.is_empty() {
        format!("{lead}。")
    } else {
        format!("{lead}：{}", e.detail)
    }
}

/// 303 See Other to `to` (after a form post, or to the log-in page).
pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A posted `application/x-www-form-urlencoded` body; a name may repeat
/// (checkboxes).
#[derive(Debug, Default, Clone)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> FormData {
        let s = String::from_utf8_lossy(body);
        FormData(
            s.split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (url_decode(k), url_decode(v))
                })
                .collect(),
        )
    }

    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }

    /// Every non-blank value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    /// The fields as a map for refilling a form (secrets left out).
    pub fn values(&self) -> Value {
        let map: std::collections::BTreeMap<&str, &str> = self
            .0
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "csrf" | "password"))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Value::from_serialize(&map)
    }
}

impl FromRequest for FormData {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = bytes.await.map_err(|_| {
                PageError::Status(StatusCode::BAD_REQUEST, "无法读取提交的表单。".into())
            })?;
            Ok(FormData::parse(&bytes))
        })
    }
}

fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Where the request was going, for `?next=` (path and query only).
fn here(req: &HttpRequest) -> String {
    // After a form post the page to come back to is the form's, not the action.
    if req.method() != actix_web::http::Method::GET {
        return "/".into();
    }
    match req.query_string() {
        "" => req.path().to_owned(),
        q => format!("{}?{q}", req.path()),
    }
}

/// A local path to go to after log-in; anything else (another host,
/// `//evil`, `/\evil`) is the home page.
pub fn safe_next(next: &str) -> String {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control());
    if ok { next.to_owned() } else { "/".into() }
}

async fn page_user(state: &AppState, token: Option<String>) -> Option<PageUser> {
    let token = token?;
    let caller = auth::caller_for_token(state, &token).await.ok()?;
    Some(PageUser {
        csrf: csrf_of(&token),
        caller,
        token,
    })
}

impl FromRequest for PageUser {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<PageUser, PageError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = cookie(req, SESSION_COOKIE);
        let next = here(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| {
                PageError::Status(StatusCode::INTERNAL_SERVER_ERROR, "no app state".into())
            })?;
            page_user(&state, token).await.ok_or(PageError::Login(next))
        })
    }
}

/// Refuses a page to roles that do not work in it (403 page).
pub fn require(user: &PageUser, roles: &[Role]) -> Result<(), PageError> {
    if roles.contains(&user.caller.role) {
        Ok(())
    } else {
        Err(PageError::Status(
            StatusCode::FORBIDDEN,
            format!("{}无权使用此页面。", role_zh(user.caller.role)),
        ))
    }
}

fn secure(state: &AppState) -> &'static str {
    if state
        .settings
        .server
        .base_url
        .to_ascii_lowercase()
        .starts_with("https://")
    {
        "; Secure"
    } else {
        ""
    }
}

fn set_cookie(resp: &mut HttpResponse, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

#[derive(serde::Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn login_form(
    state: &AppState,
    status: StatusCode,
    next: &str,
    username: &str,
    error: Option<&str>,
) -> HttpResponse {
    let mut raw = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let login_csrf = hex::encode(raw);
    let mut resp = page(
        status,
        "login.html",
        context! { title => "登录", next, username, error, login_csrf },
    );
    set_cookie(
        &mut resp,
        format!(
            "{LOGIN_CSRF_COOKIE}={login_csrf}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600{}",
            secure(state)
        ),
    );
    resp
}

/// `GET /login`: the form (or straight on, when already logged in).
pub async fn login_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<NextQuery>,
) -> HttpResponse {
    let next = safe_next(q.next.as_deref().unwrap_or("/"));
    if page_user(&state, cookie(&req, SESSION_COOKIE))
        .await
        .is_some()
    {
        return redirect(&next);
    }
    login_form(&state, StatusCode::OK, &next, "", None)
}

/// `POST /login`: checks the password as the API does and sets the cookie.
/// The form's CSRF token is a double-submit of a cookie set with the form.
pub async fn login_submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: FormData,
) -> HttpResponse {
    let next = safe_next(form.get("next"));
    let username = form.get("username").trim().to_owned();
    let expected = cookie(&req, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !constant_eq(expected.as_bytes(), form.get("csrf").as_bytes()) {
        return login_form(
            &state,
            StatusCode::FORBIDDEN,
            &next,
            &username,
            Some("登录表单已过期，请重新输入用户名和密码。"),
        );
    }
    let password = form.get("password").to_owned();
    if username.is_empty() || password.is_empty() {
        return login_form(
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            &next,
            &username,
            Some("请输入用户名和密码。"),
        );
    }
    let user = match auth::log_in(&state, &req, &username, password).await {
        Ok(u) => u,
        Err(auth::LoginError::Limited(secs)) => {
            let msg = format!(
                "登录失败次数过多，已暂停登录以保护账号安全。请在 {}后再试。",
                wait_zh(secs)
            );
            let mut resp = login_form(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                &next,
                &username,
                Some(&msg),
            );
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return resp;
        }
        Err(auth::LoginError::Refused(e)) if e.code == "unauthorized" => {
            return login_form(
                &state,
                StatusCode::UNAUTHORIZED,
                &next,
                &username,
                Some("用户名或密码错误。"),
            );
        }
        Err(auth::LoginError::Refused(e)) => return PageError::from(e).error_response(),
    };
    let (token, _) = match auth::issue_token(&state, user.id).await {
        Ok(t) => t,
        Err(e) => return PageError::from(e).error_response(),
    };
    tracing::info!(user = %user.username, "logged in to the pages");
    let max_age = state.settings.auth.token_ttl_hours.max(1) * 3600;
    let mut resp = redirect(&next);
    set_cookie(
        &mut resp,
        format!(
            "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
            secure(&state)
        ),
    );
    set_cookie(
        &mut resp,
        format!("{LOGIN_CSRF_COOKIE}=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    resp
}

/// A wait in words: "3 分钟" (rounded up), or "40 秒" under a minute.
fn wait_zh(secs: u64) -> String {
    if secs < 60 {
        format!("{secs} 秒")
    } else {
        format!("{} 分钟", secs.div_ceil(60))
    }
}

/// `POST /logout`: revokes the session's token and clears the cookie.
pub async fn logout(
    user: PageUser,
    state: web::Data<AppState>,
    form: FormData,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form)?;
    auth::revoke_token(&state, &user.token).await?;
    let mut resp = redirect("/login");
    set_cookie(
        &mut resp,
        format!(
            "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
            secure(&state)
        ),
    );
    Ok(resp)
}

/// `GET /`: the logged-in user's pages, or the public entrance.
pub async fn home(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let user = page_user(&state, cookie(&req, SESSION_COOKIE)).await;
    match user {
        Some(u) => page(
            StatusCode::OK,
            "home.html",
            context! { title => "工作台", ..u.base() },
        ),
        None => page(
            StatusCode::OK,
            "home.html",
            context! { title => "12345 政务服务便民热线", env => state.settings.env.as_str() },
        ),
    }
}

/// `GET /static/pages.js`: the little script of the staff pages (live
/// countdowns, routing suggestions while typing).
pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(include_str!("../../templates/pages.js"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_and_next_stays_local() {
        let f = FormData::parse(b"a=%E5%BC%A0+%E4%B8%89&co=x&co=&co=y&b");
        assert_eq!(f.get("a"), "张 三");
        assert_eq!(f.all("co"), vec!["x", "y"]);
        assert_eq!(f.get("b"), "");
        assert_eq!(FormData::parse(b"a=%zz%4").get("a"), "%zz%4");
        assert_eq!(safe_next("/inbox?page=2"), "/inbox?page=2");
        for bad in ["//evil.example", "https://evil.example", "/\\evil", ""] {
            assert_eq!(safe_next(bad), "/");
        }
        assert_eq!(url_encode("/a?b=1&c"), "/a%3Fb%3D1%26c");
    }
}
