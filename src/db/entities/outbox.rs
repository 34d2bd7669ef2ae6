use sea_orm::entity::prelude::*;

/// An event waiting to be (or already) published to Kafka; written in the same transaction
/// as the change it describes.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub event_id: Uuid,
    pub topic: String,
    pub key: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    /// `pending`, `sent` or `dead`.
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub available_at: DateTimeWithTimeZone,
    pub created_at: DateTimeWithTimeZone,
    pub sent_at: Option<DateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
