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
