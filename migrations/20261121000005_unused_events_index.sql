-- `events_type` served no query: the events pages filter by a type or a type prefix
-- (`type = $1 or type like $1 || '.%'`), which walks the primary key backwards, and the work
-- figures count recent completions through the BRIN index on `at`. It cost an index entry for
-- every event, two or three per subtask.
drop index events_type;
