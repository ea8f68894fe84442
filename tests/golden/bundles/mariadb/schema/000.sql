CREATE TABLE `subject` (
  `subject` varchar(16) NOT NULL,
  `weight` double NOT NULL,
  PRIMARY KEY (`subject`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci COMMENT='a subject';
