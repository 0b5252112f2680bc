-- A CloudTrail Lake event data store in the shape of the Athena table: the only part of the usage query
-- (usage.sql) that differs for Lake. Lake stores eventTime as a timestamp, requestParameters and
-- responseElements as map(varchar, varchar) (nested values as JSON text, which the Lake engine parses back),
-- and has no partitions: the day is the event's UTC day, and the eventTime range lets Lake skip the rest.
-- Placeholders (in braces) filled by bot/trail/sql/query.py: event_data_store, start, end.
SELECT
    useridentity,
    eventsource,
    eventname,
    eventtype,
    awsregion,
    recipientaccountid,
    errorcode,
    eventid,
    resources,
    date_format(eventtime, '%Y-%m-%dT%H:%i:%sZ') AS eventtime,
    json_format(CAST(requestparameters AS JSON)) AS requestparameters,
    json_format(CAST(responseelements AS JSON)) AS responseelements,
    date_format(eventtime, '%Y/%m/%d') AS log_date,
    recipientaccountid AS account,
    awsregion AS region
FROM {event_data_store}
WHERE eventtime >= TIMESTAMP {start} AND eventtime < TIMESTAMP {end}
