-- WhyCache MySQL/MariaDB datastore, schema format version 1.
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
CREATE TABLE IF NOT EXISTS `whycache_log` (
  update_id BIGINT UNSIGNED NOT NULL,
  part INT UNSIGNED NOT NULL,
  payload_size INT UNSIGNED NOT NULL,
  checksum INT UNSIGNED NOT NULL,
  single_key_hash BIGINT UNSIGNED NULL,
  single_key VARBINARY(1024) NULL,
  bytes MEDIUMBLOB NOT NULL,
  PRIMARY KEY (update_id, part),
  KEY single_key (single_key_hash)
) ENGINE=InnoDB ROW_FORMAT=DYNAMIC;

-- The counter row: the newest id handed out and the id through which history was removed.
CREATE TABLE IF NOT EXISTS `whycache_log_meta` (
  id TINYINT UNSIGNED NOT NULL,
  format_version INT UNSIGNED NOT NULL,
  last_update_id BIGINT UNSIGNED NOT NULL,
  removed_through BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB;

INSERT IGNORE INTO `whycache_log_meta` (id, format_version, last_update_id, removed_through) VALUES (1, 1, 0, 0);

-- Checkpoints: the whole dataset as of one update id, invisible until published = 1.
-- A writer holds the named lock writer_lock while building; a row whose lock is free is abandoned.
CREATE TABLE IF NOT EXISTS `whycache_log_checkpoints` (
  checkpoint_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  update_id BIGINT UNSIGNED NOT NULL,
  published TINYINT UNSIGNED NOT NULL,
  record_count BIGINT UNSIGNED NOT NULL,
  byte_count BIGINT UNSIGNED NOT NULL,
  writer_lock VARBINARY(64) NOT NULL,
  PRIMARY KEY (checkpoint_id),
  KEY published (published, update_id)
) ENGINE=InnoDB;

-- The payloads of each checkpoint, split into parts like the records of the log.
CREATE TABLE IF NOT EXISTS `whycache_log_checkpoint_payloads` (
  checkpoint_id BIGINT UNSIGNED NOT NULL,
  sequence BIGINT UNSIGNED NOT NULL,
  part INT UNSIGNED NOT NULL,
  payload_size INT UNSIGNED NOT NULL,
  checksum INT UNSIGNED NOT NULL,
  bytes MEDIUMBLOB NOT NULL,
  PRIMARY KEY (checkpoint_id, sequence, part)
) ENGINE=InnoDB ROW_FORMAT=DYNAMIC;

-- The append of one record in one call: advance the counter (which locks it and hands out
-- the id), insert the record, delete the older single-key record of its key, commit; then
-- the id and, when asked for, the records after a position (docs/FORMAT.md §4.3).
-- Optional: without it (or without EXECUTE on it) appends are multi-statement requests.
DELIMITER ;;
CREATE PROCEDURE IF NOT EXISTS `whycache_log_append_v1`(
  IN p_payload_size INT UNSIGNED, IN p_checksum INT UNSIGNED,
  IN p_single_key_hash BIGINT UNSIGNED, IN p_single_key VARBINARY(1024),
  IN p_bytes MEDIUMBLOB, IN p_page_after BIGINT UNSIGNED)
MODIFIES SQL DATA SQL SECURITY INVOKER
BEGIN
  DECLARE v_last BIGINT UNSIGNED DEFAULT 0;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  UPDATE `whycache_log_meta` SET last_update_id = LAST_INSERT_ID(last_update_id + 1) WHERE id = 1 AND format_version = 1;
  IF ROW_COUNT() = 1 THEN
    SET v_last = LAST_INSERT_ID();
    INSERT INTO `whycache_log` (update_id, part, payload_size, checksum, single_key_hash, single_key, bytes)
    VALUES (v_last, 0, p_payload_size, p_checksum, p_single_key_hash, p_single_key, p_bytes);
    IF p_single_key IS NOT NULL THEN
      DELETE old FROM `whycache_log` AS old JOIN `whycache_log` AS head FORCE INDEX (single_key) ON old.update_id = head.update_id
      WHERE head.part = 0 AND head.update_id < v_last AND head.single_key_hash = p_single_key_hash AND head.single_key = p_single_key;
    END IF;
    COMMIT;
  ELSE
    ROLLBACK;
  END IF;
  SELECT v_last;
  IF v_last > 0 AND p_page_after IS NOT NULL THEN
    SELECT m.format_version, m.last_update_id, m.removed_through, r.update_id, r.part, r.payload_size, r.checksum, r.bytes,
    (SELECT RIGHT(t.bytes, 4) FROM `whycache_log` AS t WHERE t.update_id = p_page_after ORDER BY t.part DESC LIMIT 1)
    FROM `whycache_log_meta` AS m
    LEFT JOIN `whycache_log` AS r ON r.update_id > p_page_after AND r.update_id <= p_page_after + 256 AND m.last_update_id <= p_page_after + 256
    AND (SELECT COALESCE(SUM(s.payload_size), 0) FROM `whycache_log` AS s WHERE s.update_id > p_page_after AND s.update_id <= p_page_after + 256 AND s.part = 0) <= 1048576
    WHERE m.id = 1;
  END IF;
END;;
DELIMITER ;
