//! PostgreSQL: connecting, creating the database on first use, and migrating.

pub mod entities;
pub mod members;

use crate::config::DatabaseSettings;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, Statement};
use secrecy::ExposeSecret;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    #[error("database URL {0:?} has no database name")]
    NoDatabaseName(String),
    #[error("database name {0:?} may only contain letters, digits and '_'")]
    BadDatabaseName(String),
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[source] DbErr),
    #[error("cannot create database {name}: {source}")]
    Create {
        name: String,
        #[source]
        source: DbErr,
    },
    #[error("migration failed: {0}")]
    Migrate(#[source] DbErr),
}

/// The database name of a `postgres://…/name?params` URL.
fn database_name(url: &str) -> Option<&str> {
    let without_params = url.split('?').next()?;
    let after_scheme = without_params.split_once("://")?.1;
    let name = after_scheme.split_once('/')?.1;
    (!name.is_empty()).then_some(name)
}

/// Creates the database named in `settings.url` when it is missing, using `admin_url`.
#[tracing::instrument(skip_all)]
pub async fn ensure_database(settings: &DatabaseSettings) -> Result<(), DbSetupError> {
    let admin_url = settings.admin_url.expose_secret();
    if admin_url.is_empty() {
        return Ok(());
    }
    let url = settings.url.expose_secret();
    let name = database_name(url).ok_or_else(|| DbSetupError::NoDatabaseName(redact(url)))?;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(DbSetupError::BadDatabaseName(name.to_string()));
    }
    let admin = Database::connect(admin_options(admin_url))
        .await
        .map_err(DbSetupError::Connect)?;
    let exists = admin
        .query_one_raw(Statement::from_sql_and_values(
            admin.get_database_backend(),
            "SELECT 1 FROM pg_database WHERE datname = $1",
            [name.into()],
        ))
        .await
        .map_err(DbSetupError::Connect)?
        .is_some();
    if !exists {
        tracing::info!(database = name, "creating database");
        // Two processes may race to create it; losing that race is fine.
        if let Err(source) = admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
        {
            if !source.to_string().contains("already exists") {
                return Err(DbSetupError::Create {
                    name: name.to_string(),
                    source,
                });
            }
        }
    }
    admin.close().await.ok();
    Ok(())
}

fn admin_options(url: &str) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_string());
    options
        .max_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    options
}

/// Connects the application's pool.
#[tracing::instrument(skip_all)]
pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbSetupError> {
    let mut options = ConnectOptions::new(settings.url.expose_secret().to_string());
    options
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .connect_timeout(Duration::from_secs(settings.connect_timeout_secs))
        .acquire_timeout(Duration::from_secs(settings.connect_timeout_secs))
        .sqlx_logging(false);
    Database::connect(options)
        .await
        .map_err(DbSetupError::Connect)
}

/// Applies every pending migration.
#[tracing::instrument(skip_all)]
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbSetupError> {
    Migrator::up(db, None).await.map_err(DbSetupError::Migrate)
}

/// A URL with its password replaced, safe to log.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_read_from_the_url() {
        assert_eq!(database_name("postgres://u@h:5432/shop"), Some("shop"));
        assert_eq!(
            database_name("postgres://u@h/shop?sslmode=disable"),
            Some("shop")
        );
        assert_eq!(database_name("postgres://u@h:5432/"), None);
        assert_eq!(database_name("postgres://u@h:5432"), None);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://me:pw@h/db"), "postgres://me:***@h/db");
        assert_eq!(redact("postgres://me@h/db"), "postgres://me@h/db");
    }
}
