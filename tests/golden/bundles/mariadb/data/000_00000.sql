INSERT INTO `golden_lab`.`subject` (`subject`,`weight`) VALUES ('é\'q','0.25'),('m1','20.5');
