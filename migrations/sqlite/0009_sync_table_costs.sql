-- PostgreSQL's 0009 makes ids compare byte by byte and stops ANALYZE sampling the JSON columns.
-- SQLite compares text byte by byte already (BINARY) and analyzes nothing on its own: nothing to do.
select 1;
