//! What `state migrate` and `state check` do on PostgreSQL: count, read
//! and load whole tables, and check what the constraints do not.

use std::collections::BTreeMap;

use tokio_postgres::types::ToSql;

use super::PgState;
use crate::state::StateError;
use crate::state::transfer::{Cell, Kind, Rows, TABLES, Table};
use crate::sync::links::LinkState;

/// Rows per statement when loading: a few thousand rows per round trip,
/// well under the protocol's limits.
const CHUNK: usize = 5_000;

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

    /// Every row of a table, in key order, as SQLite reads them: booleans
    /// as 0 or 1, JSON as text.
    pub(in crate::state) async fn read_table(&self, table: &Table) -> Result<Rows, StateError> {
        let columns: Vec<String> = table
            .columns
            .iter()
            .map(|(name, kind)| match kind {
                Kind::Json => format!("{name}::text"),
                _ => name.to_string(),
            })
            .collect();
        let rows = self
            .query(
                &format!(
                    "SELECT {} FROM {} ORDER BY {}",
                    columns.join(", "),
                    table.name,
                    table.key
                ),
                &[],
            )
            .await?;
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

    /// Loads whole tables in one transaction (emptying every table first
    /// if `replace`), a few thousand rows per statement, and moves the
    /// sequences past the numbers loaded.
    pub(in crate::state) async fn load_tables(
        &self,
        tables: &[(&Table, Rows)],
        replace: bool,
    ) -> Result<(), StateError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(|e| self.error(e))?;
        if replace {
            let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
            transaction
                .batch_execute(&format!("TRUNCATE {} RESTART IDENTITY", names.join(", ")))
                .await
                .map_err(|e| self.error(e))?;
        }
        for (table, rows) in tables {
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
            let sql = format!(
                "INSERT INTO {} ({}) SELECT {} FROM UNNEST({}) AS u({})",
                table.name,
                table.column_list(),
                values.join(", "),
                arrays.join(", "),
                names.join(", ")
            );
            for chunk in rows.chunks(CHUNK) {
                let columns = columns_of(self, table, chunk)?;
                let params: Vec<&(dyn ToSql + Sync)> = columns
                    .iter()
                    .map(|c| c.as_ref() as &(dyn ToSql + Sync))
                    .collect();
                self.exec(&transaction, &sql, &params).await?;
            }
        }
        for (table, column) in [("changes", "seq"), ("journal", "id")] {
            transaction
                .batch_execute(&format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), COALESCE(MAX({column}), 0) + 1, false) FROM {table}"
                ))
                .await
                .map_err(|e| self.error(e))?;
        }
        transaction.commit().await.map_err(|e| self.error(e))
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

/// A chunk of rows as one array per column, typed as the column is.
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
