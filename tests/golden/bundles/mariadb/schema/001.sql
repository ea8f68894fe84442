CREATE TABLE `session` (
  `subject` varchar(16) NOT NULL,
  `session` int(11) NOT NULL,
  `note` varchar(64) DEFAULT NULL COMMENT 'free text',
  `data` longblob NOT NULL,
  PRIMARY KEY (`subject`,`session`),
  CONSTRAINT `session_ibfk_1` FOREIGN KEY (`subject`) REFERENCES `subject` (`subject`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
