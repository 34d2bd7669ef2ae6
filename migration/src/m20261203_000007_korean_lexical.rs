use sea_orm_migration::prelude::*;

/// Korean-aware full text for the lexical signal. PostgreSQL's `english` configuration keeps a
/// Korean word with its particle as one token ("패딩을" never matches "패딩"), so the document
/// and the query both get, beside the English tsvector, the character bigrams of every Hangul
/// run ("롱패딩을" → 롱패 패딩 딩을): most Korean nouns are two syllables or longer, so a word
/// inside a longer form or before a particle shares its bigrams. A one-syllable run is kept
/// whole, and a two-syllable run that ends in a particle also yields its first syllable
/// ("책을" → 책), so one-syllable nouns still match.
///
/// One definition serves both sides: `convrec_lexical_document` fills the stored column
/// `products.lexical` (GIN-indexed), `convrec_lexical_query` turns the shopper's words into the
/// tsquery, and both call `convrec_hangul_terms`. SQL-standard bodies (`RETURN …`) are bound
/// when created, so they work under any `search_path` (maintenance runs with `pg_catalog`).
/// Supersedes `products_fulltext_idx` of m20261124_000006.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
CREATE FUNCTION convrec_hangul_terms(input text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    run text;
    stem text;
    terms text[] := '{}';
BEGIN
    FOR run IN SELECT m[1] FROM regexp_matches(input, '[가-힣]+', 'g') AS m LOOP
        IF char_length(run) = 1 THEN
            terms := terms || run;
        ELSE
            FOR i IN 1 .. char_length(run) - 1 LOOP
                terms := terms || substr(run, i, 2);
            END LOOP;
            -- Only a one-syllable stem adds a term: a longer one's bigrams are already there.
            stem := regexp_replace(run,
                '(으로|에서|까지|부터|처럼|보다|하고|이랑|한테|에게|을|를|이|가|은|는|에|의|도|만|로|와|과|랑)$', '');
            IF char_length(stem) = 1 THEN
                terms := terms || stem;
            END IF;
        END IF;
    END LOOP;
    -- Without IDF in ts_rank, the endings of chat and of catalog prose ("추천해줘", "있어요",
    -- "좋습니다") would weigh as much as the product's name; they are no terms.
    RETURN ARRAY(SELECT t FROM unnest(terms) AS t WHERE t <> ALL (ARRAY[
        '니다', '입니', '습니', '있습', '좋습', '합니', '됩니', '줍니', '있어', '어요', '세요',
        '주세', '해요', '해줘', '줘요', '나요', '있나', '있는', '하는', '하게', '되어', '찾고',
        '추천', '천해', '필요', '요해', '으로', '에서', '에도', '이나', '까지', '하고', '이라',
        '로도', '수', '주', '잘', '한', '더', '좀', '것', '등', '및', '또', '할', '있', '없']));
END
$$;

-- The Hangul terms of title and brand weigh B (0.4), those of the description D (0.1): a
-- long Korean description shares many bigrams with a query by chance ("패딩을 넣어" in a
-- sneaker's), the title says what the product is. The English side is unweighted as before.
CREATE FUNCTION convrec_lexical_document(title text, brand text, description text)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN to_tsvector('english', title || ' ' || coalesce(brand, '') || ' ' || description)
    || setweight(to_tsvector('simple', array_to_string(
        convrec_hangul_terms(title || ' ' || coalesce(brand, '')), ' ')), 'B')
    || to_tsvector('simple', array_to_string(convrec_hangul_terms(description), ' '));

-- Any word matches (English words stemmed and OR-ed, as before; Hangul bigrams OR-ed).
CREATE FUNCTION convrec_lexical_query(words text)
RETURNS tsquery LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN cardinality(convrec_hangul_terms(words)) = 0
    THEN to_tsquery('english', replace(plainto_tsquery('english', words)::text, '&', '|'))
    ELSE to_tsquery('english', replace(plainto_tsquery('english', words)::text, '&', '|'))
        || to_tsquery('simple', array_to_string(convrec_hangul_terms(words), ' | '))
END;

ALTER TABLE products ADD COLUMN lexical tsvector
    GENERATED ALWAYS AS (convrec_lexical_document(title, brand, description)) STORED;
CREATE INDEX products_lexical_idx ON products USING gin (lexical);
DROP INDEX IF EXISTS products_fulltext_idx;
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "CREATE INDEX IF NOT EXISTS products_fulltext_idx ON products USING gin \
             (to_tsvector('english', title || ' ' || coalesce(brand, '') || ' ' || description)); \
             ALTER TABLE products DROP COLUMN lexical; \
             DROP FUNCTION convrec_lexical_query(text); \
             DROP FUNCTION convrec_lexical_document(text, text, text); \
             DROP FUNCTION convrec_hangul_terms(text);",
        )
        .await
    }
}
