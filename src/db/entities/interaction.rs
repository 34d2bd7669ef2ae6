use sea_orm::entity::prelude::*;

/// A view, cart add or order line of one member for one product.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "interactions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub member_id: String,
    pub product_id: Uuid,
    /// `view`, `cart` or `order`.
    pub kind: String,
    pub quantity: i32,
    pub source_ref: Option<String>,
    pub occurred_at: DateTimeWithTimeZone,
    pub created_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
