//! What `state migrate` and `state check` do on PostgreSQL: count, read
//! and load tables page by page, and check what the constraints do not.

use std::collections::BTreeMap;

use tokio_postgres::types::ToSql;

use super::PgState;
use crate::state::StateError;
use crate::state::transfer::{Cell, Kind, PAGE, Rows, Summary, Summing, TABLES, Table};
use crate::sync::links::LinkState;

impl PgState {
    /// Rows by table.
    pub(in crate::state) async fn counts(&self) -> Result<BTreeMap<&'static str, u64>, StateError> {
        let mut counts = BTreeMap::new();
        for table in TABLES {
            let rows = self
                .query(&format!("SELECT COUNT(*) FROM {}", table.name), &[])
                .await?;
            let n: i64 = match rows.first() {
                Some(row) => self.get(row, 0)?,
                None => 0,
            };
            counts.insert(table.name, super::count(n));
        }
        Ok(counts)
    }

    /// The database's schema version.
    pub(in crate::state) async fn schema_version(&self) -> Result<i64, StateError> {
        let rows = self
            .query("SELECT version FROM schema_version WHERE id = 1", &[])
            .await?;
        match rows.first() {
            Some(row) => self.get(row, 0),
            None => Ok(0),
        }
    }

    /// A page of a table's rows in key order after the row whose key is
    /// `after`, as SQLite reads them: booleans as 0 or 1, JSON as text.
    async fn read_page(&self, table: &Table, after: Option<&[Cell]>) -> Result<Rows, StateError> {
        let columns: Vec<String> = table
            .columns
            .iter()
            .map(|(name, kind)| match kind {
                Kind::Json => format!("{name}::text"),
                _ => name.to_string(),
            })
            .collect();
        let sql = table.page_sql(&columns.join(", "), after.is_some(), |i| format!("${i}"));
        let keys: Vec<Box<dyn ToSql + Sync + Send>> = after
            .unwrap_or_default()
            .iter()
            .map(|cell| match cell {
                Cell::Int(n) => Box::new(*n) as Box<dyn ToSql + Sync + Send>,
                Cell::Text(text) => Box::new(text.clone()),
                Cell::Null => Box::new(None::<String>),
            })
            .collect();
        let params: Vec<&(dyn ToSql + Sync)> = keys
            .iter()
            .map(|k| k.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = self.query(&sql, &params).await?;
        rows.iter()
            .map(|row| {
                table
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, kind))| {
                        Ok(match kind {
                            Kind::Int => self.get::<Option<i64>>(row, i)?.map(Cell::Int),
                            Kind::Bool => self
                                .get::<Option<bool>>(row, i)?
                                .map(|b| Cell::Int(i64::from(b))),
                            Kind::Text | Kind::Json => {
                                self.get::<Option<String>>(row, i)?.map(Cell::Text)
                            }
                        }
                        .unwrap_or(Cell::Null))
                    })
                    .collect()
            })
            .collect()
    }

    /// A table's row count and checksum, read page by page.
    pub(in crate::state) async fn summary(&self, table: &Table) -> Result<Summary, StateError> {
        let mut summing = Summing::new();
        let mut after = None;
        loop {
            let page = self.read_page(table, after.as_deref()).await?;
            summing.add(table, &page);
            if page.len() < PAGE {
                return Ok(summing.finish());
            }
            after = page.last().map(|row| table.key_of(row));
        }
    }

    /// Loads every table from `source` (a page of rows in key order after
    /// a key) in one transaction, emptying every table first if `replace`,
    /// and moves the sequences past the numbers loaded. The count and
    /// checksum of what was read, by table.
    pub(in crate::state) async fn load_from(
        &self,
        replace: bool,
        mut source: impl FnMut(&Table, Option<&[Cell]>) -> Result<Rows, StateError>,
    ) -> Result<BTreeMap<&'static str, Summary>, StateError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(|e| self.error(e))?;
        if replace {
            let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
            transaction
                .batch_execute(&format!("TRUNCATE {} RESTART IDENTITY", names.join(", ")))
                .await
                .map_err(|e| self.error(e))?;
        }
        let mut summaries = BTreeMap::new();
        for table in TABLES {
            let sql = insert_sql(table);
            let mut summing = Summing::new();
            let mut after: Option<Vec<Cell>> = None;
            loop {
                let page = source(table, after.as_deref())?;
                summing.add(table, &page);
                if !page.is_empty() {
                    let columns = columns_of(self, table, &page)?;
                    let params: Vec<&(dyn ToSql + Sync)> = columns
                        .iter()
                        .map(|c| c.as_ref() as &(dyn ToSql + Sync))
                        .collect();
                    self.exec(&transaction, &sql, &params).await?;
                }
                if page.len() < PAGE {
                    break;
                }
                after = page.last().map(|row| table.key_of(row));
            }
            summaries.insert(table.name, summing.finish());
        }
        for (table, column) in [("changes", "seq"), ("journal", "id")] {
            transaction
                .batch_execute(&format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), COALESCE(MAX({column}), 0) + 1, false) FROM {table}"
                ))
                .await
                .map_err(|e| self.error(e))?;
        }
        transaction.commit().await.map_err(|e| self.error(e))?;
        Ok(summaries)
    }

    /// What the constraints do not check: each sequence is ahead of the
    /// numbers in use (a copy that left one behind would make the next
    /// change collide), and every link's state is one this binary reads.
    pub(in crate::state) async fn integrity(&self) -> Result<Vec<String>, StateError> {
        let mut problems = Vec::new();
        for (table, column) in [("changes", "seq"), ("journal", "id")] {
            let rows = self
                .query(
                    &format!(
                        "SELECT (SELECT last_value FROM {table}_{column}_seq), (SELECT is_called FROM {table}_{column}_seq), COALESCE(MAX({column}), 0)::bigint FROM {table}"
                    ),
                    &[],
                )
                .await?;
            if let Some(row) = rows.first() {
                let last: i64 = self.get(row, 0)?;
                let called: bool = self.get(row, 1)?;
                let max: i64 = self.get(row, 2)?;
                let next = if called { last + 1 } else { last };
                if next <= max {
                    problems.push(format!(
                        "the sequence of {table}.{column} would give {next}, which is in use (the highest is {max})"
                    ));
                }
            }
        }
        for table in ["links", "group_links"] {
            let rows = self
                .query(&format!("SELECT DISTINCT state FROM {table}"), &[])
                .await?;
            for row in &rows {
                let state: String = self.get(row, 0)?;
                if let Err(message) = LinkState::parse(&state) {
                    problems.push(format!("{table}: {message}"));
                }
            }
        }
        Ok(problems)
    }
}

/// One statement that inserts a page of a table's rows, one array per
/// column.
fn insert_sql(table: &Table) -> String {
    let arrays: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| {
            let n = i + 1;
            match kind {
                Kind::Text | Kind::Json => format!("${n}::text[]"),
                Kind::Int => format!("${n}::bigint[]"),
                Kind::Bool => format!("${n}::bool[]"),
            }
        })
        .collect();
    let names: Vec<String> = (0..table.columns.len()).map(|i| format!("c{i}")).collect();
    let values: Vec<String> = table
        .columns
        .iter()
        .zip(&names)
        .map(|((_, kind), name)| match kind {
            Kind::Json => format!("{name}::jsonb"),
            _ => name.clone(),
        })
        .collect();
    format!(
        "INSERT INTO {} ({}) SELECT {} FROM UNNEST({}) AS u({})",
        table.name,
        table.column_list(),
        values.join(", "),
        arrays.join(", "),
        names.join(", ")
    )
}

/// A page of rows as one array per column, typed as the column is.
fn columns_of(
    db: &PgState,
    table: &Table,
    rows: &[Vec<Cell>],
) -> Result<Vec<Box<dyn ToSql + Sync + Send>>, StateError> {
    let wrong = |column: &str, cell: &Cell| {
        db.invalid(format!(
            "table {}, column {column}: the file holds {cell:?}, which is not the column's type",
            table.name
        ))
    };
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (column, kind))| {
            let cells = rows.iter().map(|row| row.get(i).unwrap_or(&Cell::Null));
            Ok(match kind {
                Kind::Text | Kind::Json => Box::new(
                    cells
                        .map(|cell| match cell {
                            Cell::Null => Ok(None),
                            Cell::Text(text) => Ok(Some(text.clone())),
                            other => Err(wrong(column, other)),
                        })
                        .collect::<Result<Vec<Option<String>>, _>>()?,
                ) as Box<dyn ToSql + Sync + Send>,
                Kind::Int => Box::new(
                    cells
                        .map(|cell| match cell {
                            Cell::Null => Ok(None),
                            Cell::Int(n) => Ok(Some(*n)),
                            other => Err(wrong(column, other)),
                        })
                        .collect::<Result<Vec<Option<i64>>, _>>()?,
                ),
                Kind::Bool => Box::new(
                    cells
                        .map(|cell| match cell {
                            Cell::Null => Ok(None),
                            Cell::Int(n) => Ok(Some(*n != 0)),
                            other => Err(wrong(column, other)),
                        })
                        .collect::<Result<Vec<Option<bool>>, _>>()?,
                ),
            })
        })
        .collect()
}
