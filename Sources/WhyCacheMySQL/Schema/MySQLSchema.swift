/// The tables of one MySQL log and the SQL that creates them.
///
/// `Schema/whycache_log.sql` in the repository is ``script`` rendered for the
/// default table name `whycache_log` (a test keeps the two equal);
/// `docs/FORMAT.md` §4 explains every column and why the log can never skip
/// a record.
///
/// Four tables share the log table's name as a prefix:
///
/// | Table | Holds |
/// | --- | --- |
/// | `<log>` | the records, one head row per record plus a row per extra 1 MiB part |
/// | `<log>_meta` | one row: the format version, the id counter, how far history was removed |
/// | `<log>_checkpoints` | one row per checkpoint, building or published |
/// | `<log>_checkpoint_payloads` | the payloads of the checkpoints, split into parts like records |
///
/// and one stored procedure, `<log>_append_v1`, the append of one record in
/// one call (``appendProcedureStatement``; docs/FORMAT.md §4.3). The tables
/// are all an append needs: without the procedure (tables of an earlier
/// version, or a user who may not create routines) appends are multi-statement
/// requests.
struct MySQLSchema: Sendable {
    /// The version of this layout, stored in `<log>_meta.format_version`.
    static let formatVersion: UInt64 = 1

    /// The largest part of a payload stored in one row (1 MiB): far below the
    /// servers' default `max_allowed_packet` of 16 MiB, so payloads of any
    /// size up to ``/WhyCacheSupport/WhyCacheLimits/maximumRecordSize`` fit with any server setting.
    static let partSize = 1 << 20

    /// The log table.
    let log: String
    /// The one-row table with the id counter.
    let meta: String
    /// The table of checkpoints.
    let checkpoints: String
    /// The table of checkpoint payloads.
    let checkpointPayloads: String
    /// The stored procedure that appends one record. Its name carries the
    /// version of its parameters and body: a changed procedure gets a new
    /// name, so that processes of both versions can run side by side.
    let appendProcedure: String

    /// The names for the log table `table`, back-quoted.
    init(table: MySQLIdentifier) {
        log = table.quoted()
        meta = table.quoted(suffix: "_meta")
        checkpoints = table.quoted(suffix: "_checkpoints")
        checkpointPayloads = table.quoted(suffix: "_checkpoint_payloads")
        appendProcedure = table.quoted(suffix: "_append_v1")
    }

    /// The statements that create the tables and the append procedure when
    /// they are missing, in order. Running them again changes nothing.
    var createStatements: [String] {
        tableStatements + [appendProcedureStatement]
    }

    /// The statements that create the tables when missing, in order.
    var tableStatements: [String] {
        [
            """
            CREATE TABLE IF NOT EXISTS \(log) (
              update_id BIGINT UNSIGNED NOT NULL,
              part INT UNSIGNED NOT NULL,
              payload_size INT UNSIGNED NOT NULL,
              checksum INT UNSIGNED NOT NULL,
              single_key_hash BIGINT UNSIGNED NULL,
              single_key VARBINARY(1024) NULL,
              bytes MEDIUMBLOB NOT NULL,
              PRIMARY KEY (update_id, part),
              KEY single_key (single_key_hash)
            ) ENGINE=InnoDB ROW_FORMAT=DYNAMIC
            """,
            """
            CREATE TABLE IF NOT EXISTS \(meta) (
              id TINYINT UNSIGNED NOT NULL,
              format_version INT UNSIGNED NOT NULL,
              last_update_id BIGINT UNSIGNED NOT NULL,
              removed_through BIGINT UNSIGNED NOT NULL,
              PRIMARY KEY (id)
            ) ENGINE=InnoDB
            """,
            "INSERT IGNORE INTO \(meta) (id, format_version, last_update_id, removed_through) VALUES (1, \(Self.formatVersion), 0, 0)",
            """
            CREATE TABLE IF NOT EXISTS \(checkpoints) (
              checkpoint_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
              update_id BIGINT UNSIGNED NOT NULL,
              published TINYINT UNSIGNED NOT NULL,
              record_count BIGINT UNSIGNED NOT NULL,
              byte_count BIGINT UNSIGNED NOT NULL,
              writer_lock VARBINARY(64) NOT NULL,
              PRIMARY KEY (checkpoint_id),
              KEY published (published, update_id)
            ) ENGINE=InnoDB
            """,
            """
            CREATE TABLE IF NOT EXISTS \(checkpointPayloads) (
              checkpoint_id BIGINT UNSIGNED NOT NULL,
              sequence BIGINT UNSIGNED NOT NULL,
              part INT UNSIGNED NOT NULL,
              payload_size INT UNSIGNED NOT NULL,
              checksum INT UNSIGNED NOT NULL,
              bytes MEDIUMBLOB NOT NULL,
              PRIMARY KEY (checkpoint_id, sequence, part)
            ) ENGINE=InnoDB ROW_FORMAT=DYNAMIC
            """,
        ]
    }

    /// The statement that creates the append procedure when it is missing
    /// (see docs/FORMAT.md §4.3 for what it does and why no record is
    /// skipped); its page read is that of docs/FORMAT.md §4.1, with the
    /// procedure's parameter in its value slots.
    ///
    /// It runs with the caller's privileges (`SQL SECURITY INVOKER`), so it
    /// needs no definer account and grants nothing the caller lacks. A
    /// statement that fails inside it rolls the transaction back before the
    /// error reaches the client.
    var appendProcedureStatement: String {
        let window = "p_page_after + \(MySQLLogTable.smallPageCount)"
        let page = MySQLLogTable.smallPageSQL(
            schema: self,
            ["p_page_after", "p_page_after", window, window, "p_page_after", window, "\(MySQLLogTable.smallPageBytes)"])
        return """
            CREATE PROCEDURE IF NOT EXISTS \(appendProcedure)(
              IN p_payload_size INT UNSIGNED, IN p_checksum INT UNSIGNED,
              IN p_single_key_hash BIGINT UNSIGNED, IN p_single_key VARBINARY(1024),
              IN p_bytes MEDIUMBLOB, IN p_page_after BIGINT UNSIGNED)
            MODIFIES SQL DATA SQL SECURITY INVOKER
            BEGIN
              DECLARE v_last BIGINT UNSIGNED DEFAULT 0;
              DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
              START TRANSACTION;
              UPDATE \(meta) SET last_update_id = LAST_INSERT_ID(last_update_id + 1) WHERE id = 1 AND format_version = \(Self.formatVersion);
              IF ROW_COUNT() = 1 THEN
                SET v_last = LAST_INSERT_ID();
                INSERT INTO \(log) (update_id, part, payload_size, checksum, single_key_hash, single_key, bytes)
                VALUES (v_last, 0, p_payload_size, p_checksum, p_single_key_hash, p_single_key, p_bytes);
                IF p_single_key IS NOT NULL THEN
                  DELETE old FROM \(log) AS old JOIN \(log) AS head FORCE INDEX (single_key) ON old.update_id = head.update_id
                  WHERE head.part = 0 AND head.update_id < v_last AND head.single_key_hash = p_single_key_hash AND head.single_key = p_single_key;
                END IF;
                COMMIT;
              ELSE
                ROLLBACK;
              END IF;
              SELECT v_last;
              IF v_last > 0 AND p_page_after IS NOT NULL THEN
            \(page.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"));
              END IF;
            END
            """
    }

    /// The statements as one commented SQL script, for a database
    /// administrator who creates the tables by hand.
    var script: String {
        let header = """
            -- WhyCache MySQL/MariaDB datastore, schema format version \(Self.formatVersion).
            --
            -- Created by MySQLDatastore.createIfMissing() or `whycache-tool init-store`;
            -- this script does the same for a database administrator. Running it twice changes nothing.
            -- Every column is explained in docs/FORMAT.md §4.
            --
            -- The change log. A record is one head row (part 0) plus one row per further 1 MiB of
            -- its payload. Ids come from <log>_meta.last_update_id, taken under a row lock in the
            -- appending transaction, so records commit in id order and a reader never skips one.
            -- single_key/single_key_hash are set on the head of a record that changes one key;
            -- appending such a record deletes the older single-key record of the same key.
            """
        let comments = [
            header,
            "-- The counter row: the newest id handed out and the id through which history was removed.",
            "",
            "-- Checkpoints: the whole dataset as of one update id, invisible until published = 1.\n-- A writer holds the named lock writer_lock while building; a row whose lock is free is abandoned.",
            "-- The payloads of each checkpoint, split into parts like the records of the log.",
        ]
        let tables = zip(comments, tableStatements).map { comment, statement in
            (comment.isEmpty ? "" : comment + "\n") + statement + ";\n"
        }
        let procedure = """
            -- The append of one record in one call: advance the counter (which locks it and hands out
            -- the id), insert the record, delete the older single-key record of its key, commit; then
            -- the id and, when asked for, the records after a position (docs/FORMAT.md §4.3).
            -- Optional: without it (or without EXECUTE on it) appends are multi-statement requests.
            DELIMITER ;;
            \(appendProcedureStatement);;
            DELIMITER ;

            """
        return (tables + [procedure]).joined(separator: "\n")
    }
}
