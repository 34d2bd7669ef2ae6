use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "conversation_messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub member_id: String,
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
    pub embedding: Option<PgVector>,
    /// The analysed intent of a user message.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub intent: Option<Json>,
    /// The products an assistant reply recommended, with their explanations.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub products: Option<Json>,
    pub created_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
