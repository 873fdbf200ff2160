//! Departments, users, bearer tokens and the personal-data access log.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::entities::{access_log, api_token, department, user};
use super::{Store, StoreError, StoreResult};

/// What an admin (or the user, for the password) changes; `None` leaves a
/// field as it is, `Some(None)` clears a nullable one.
#[derive(Debug, Default, Clone)]
pub struct UserChanges {
    pub password_hash: Option<String>,
    pub role: Option<String>,
    pub department: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub display_name: Option<Option<String>>,
    pub active: Option<bool>,
}

async fn revoke_user_tokens_in(
    db: &impl sea_orm::ConnectionTrait,
    user_id: i64,
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    let r = api_token::Entity::update_many()
        .col_expr(
            api_token::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(Some(now)),
        )
        .filter(api_token::Column::UserId.eq(user_id))
        .filter(api_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(r.rows_affected)
}

impl Store {
    pub async fn list_departments(&self) -> StoreResult<Vec<department::Model>> {
        Ok(department::Entity::find()
            .order_by_asc(department::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// District departments a place name may denote: by code, by name, or
    /// by name without its 人民政府 suffix (`东湖区` for 东湖区人民政府).
    pub async fn districts_named(&self, region: &str) -> StoreResult<Vec<department::Model>> {
        use department::Column as C;
        Ok(department::Entity::find()
            .filter(C::Kind.eq(crate::domain::types::DepartmentKind::District.as_str()))
            .filter(
                sea_orm::Condition::any()
                    .add(C::Code.eq(region))
                    .add(C::Name.eq(region))
                    .add(C::Name.eq(format!("{region}人民政府"))),
            )
            .order_by_asc(C::Id)
            .all(&self.db)
            .await?)
    }

    pub async fn department(&self, code: &str) -> StoreResult<Option<department::Model>> {
        Ok(department::Entity::find()
            .filter(department::Column::Code.eq(code))
            .one(&self.db)
            .await?)
    }

    pub async fn create_department(
        &self,
        code: &str,
        name: &str,
        kind: &str,
        email: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<department::Model> {
        let m = department::ActiveModel {
            code: Set(code.to_owned()),
            name: Set(name.to_owned()),
            kind: Set(kind.to_owned()),
            email: Set(email.map(str::to_owned)),
            created_at: Set(now),
            ..Default::default()
        };
        let w = self.begin_write().await?;
        let r = m.insert(&w.txn).await;
        match r {
            Ok(m) => {
                w.commit().await?;
                Ok(m)
            }
            Err(e) => {
                let e = StoreError::from(e);
                if e.is_unique_violation() {
                    Err(StoreError::Conflict(format!(
                        "department `{code}` already exists"
                    )))
                } else {
                    Err(e)
                }
            }
        }
    }

    pub async fn count_users(&self) -> StoreResult<u64> {
        Ok(user::Entity::find().count(&self.db).await?)
    }

    pub async fn user_by_name(&self, username: &str) -> StoreResult<Option<user::Model>> {
        Ok(user::Entity::find()
            .filter(user::Column::Username.eq(username))
            .one(&self.db)
            .await?)
    }

    pub async fn list_users(&self) -> StoreResult<Vec<user::Model>> {
        Ok(user::Entity::find()
            .order_by_asc(user::Column::Id)
            .all(&self.db)
            .await?)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: &str,
        department: Option<&str>,
        email: Option<&str>,
        display_name: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<user::Model> {
        let m = user::ActiveModel {
            username: Set(username.to_owned()),
            password_hash: Set(password_hash.to_owned()),
            role: Set(role.to_owned()),
            department: Set(department.map(str::to_owned)),
            email: Set(email.map(str::to_owned)),
            display_name: Set(display_name.map(str::to_owned)),
            active: Set(true),
            created_at: Set(now),
            ..Default::default()
        };
        let w = self.begin_write().await?;
        match m.insert(&w.txn).await {
            Ok(m) => {
                w.commit().await?;
                Ok(m)
            }
            Err(e) => {
                let e = StoreError::from(e);
                if e.is_unique_violation() {
                    Err(StoreError::Conflict(format!(
                        "user `{username}` already exists"
                    )))
                } else {
                    Err(e)
                }
            }
        }
    }

    pub async fn create_token(
        &self,
        user_id: i64,
        token_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let m = api_token::ActiveModel {
            token_hash: Set(token_hash.to_owned()),
            user_id: Set(user_id),
            created_at: Set(now),
            expires_at: Set(expires_at),
            revoked_at: Set(None),
            ..Default::default()
        };
        let w = self.begin_write().await?;
        m.insert(&w.txn).await?;
        w.commit().await?;
        Ok(())
    }

    /// Revokes a token (log-out); an unknown or revoked one is left alone.
    pub async fn revoke_token(&self, token_hash: &str, now: DateTime<Utc>) -> StoreResult<()> {
        let w = self.begin_write().await?;
        api_token::Entity::update_many()
            .col_expr(
                api_token::Column::RevokedAt,
                sea_orm::sea_query::Expr::value(Some(now)),
            )
            .filter(api_token::Column::TokenHash.eq(token_hash))
            .filter(api_token::Column::RevokedAt.is_null())
            .exec(&w.txn)
            .await?;
        w.commit().await?;
        Ok(())
    }

    /// Revokes every live token of a user; returns how many.
    pub async fn revoke_user_tokens(&self, user_id: i64, now: DateTime<Utc>) -> StoreResult<u64> {
        let w = self.begin_write().await?;
        let n = revoke_user_tokens_in(&w.txn, user_id, now).await?;
        w.commit().await?;
        Ok(n)
    }

    pub async fn user_by_id(&self, id: i64) -> StoreResult<Option<user::Model>> {
        Ok(user::Entity::find_by_id(id).one(&self.db).await?)
    }

    /// Applies `changes` to user `id` (`None` when there is no such user),
    /// revoking every token of theirs in the same transaction when `revoke`.
    pub async fn update_user(
        &self,
        id: i64,
        changes: &UserChanges,
        revoke: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<user::Model>> {
        let w = self.begin_write().await?;
        let Some(current) = user::Entity::find_by_id(id).one(&w.txn).await? else {
            return Ok(None);
        };
        let mut m: user::ActiveModel = current.into();
        if let Some(h) = &changes.password_hash {
            m.password_hash = Set(h.clone());
        }
        if let Some(r) = &changes.role {
            m.role = Set(r.clone());
        }
        if let Some(d) = &changes.department {
            m.department = Set(d.clone());
        }
        if let Some(e) = &changes.email {
            m.email = Set(e.clone());
        }
        if let Some(n) = &changes.display_name {
            m.display_name = Set(n.clone());
        }
        if let Some(a) = changes.active {
            m.active = Set(a);
        }
        let u = m.update(&w.txn).await?;
        if revoke {
            revoke_user_tokens_in(&w.txn, id, now).await?;
        }
        w.commit().await?;
        Ok(Some(u))
    }

    /// The active user behind a token hash, with the token's expiry.
    pub async fn token_user(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(user::Model, DateTime<Utc>)>> {
        let Some(tok) = api_token::Entity::find()
            .filter(api_token::Column::TokenHash.eq(token_hash))
            .filter(api_token::Column::RevokedAt.is_null())
            .filter(api_token::Column::ExpiresAt.gt(now))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let u = user::Entity::find_by_id(tok.user_id)
            .filter(user::Column::Active.eq(true))
            .one(&self.db)
            .await?;
        Ok(u.map(|u| (u, tok.expires_at)))
    }

    pub async fn log_access(
        &self,
        username: &str,
        role: &str,
        ticket_id: Option<i64>,
        action: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let m = access_log::ActiveModel {
            at: Set(now),
            username: Set(username.to_owned()),
            role: Set(role.to_owned()),
            ticket_id: Set(ticket_id),
            action: Set(action.to_owned()),
            reason: Set(reason.to_owned()),
            ..Default::default()
        };
        let w = self.begin_write().await?;
        m.insert(&w.txn).await?;
        w.commit().await?;
        Ok(())
    }

    pub async fn access_log(
        &self,
        ticket_id: Option<i64>,
        limit: u64,
        offset: u64,
    ) -> StoreResult<(Vec<access_log::Model>, u64)> {
        let mut q = access_log::Entity::find();
        if let Some(t) = ticket_id {
            q = q.filter(access_log::Column::TicketId.eq(t));
        }
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_desc(access_log::Column::Id)
            .limit(limit)
            .offset(offset)
            .all(&self.db)
            .await?;
        Ok((rows, total))
    }
}
