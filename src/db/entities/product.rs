use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "products")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub sku: String,
    pub title: String,
    pub description: String,
    pub category: String,
    pub brand: Option<String>,
    /// Minor units of `currency`; `None` when the source did not know the price.
    pub price_minor: Option<i64>,
    pub currency: String,
    pub stock: i32,
    #[sea_orm(column_type = "JsonBinary")]
    pub attributes: Json,
    pub image_url: Option<String>,
    /// all-MiniLM-L6-v2 embedding of title + description, filled by the embedding pipeline.
    pub embedding: Option<PgVector>,
    pub created_at: DateTimeWithTimeZone,
    pub updated_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
