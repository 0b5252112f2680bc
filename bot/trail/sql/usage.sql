-- Usage of every principal, grouped inside the engine (Athena engine v3 / Trino dialect).
--
-- Runs over the CloudTrail table printed by `tighten athena-ddl` (partitions account, region, log_date =
-- the S3 folder date 'YYYY/MM/DD'). One output row per group of identical calls: Tighten's normalizer then
-- reads each row as one event that happened `calls` times between `first_time` and `last_time`.
--
-- The group key keeps every field the normalizer reads and drops what only tells calls apart:
--   * the principal: the userIdentity fields without the per-session parts (for an assumed role the
--     session name is cut from the ARN and the principalId; access keys and session attributes are dropped);
--   * the request and response: per service, only the top-level parameters the event map can read
--     (names derived from the map and the IAM catalog's ARN formats, filled in as the kept_fields table);
--     a service the table does not list keeps the whole JSON, and so does every service in "full" grouping;
--   * resources[], eventType, errorCode, region, recipient account and the UTC day of the call;
--   * for a call refused by IAM (an error code of the denied family), its eventID ('' when the event has
--     none; NULL means "not of the denied family"): denials stay one row per call for the post-apply watch.
-- The denied family is wider than the normalizer's test (bot/trail/normalize.py is_denied), never narrower:
-- a denied call grouped with others would lose its eventID, and the ingest refuses such a row.
-- Placeholders (in braces) filled by bot/trail/sql/query.py: table, log_dates, scope, kept_fields.
WITH calls AS (
    SELECT
        t.log_date,
        t.eventsource,
        t.eventname,
        t.eventtype,
        t.awsregion,
        t.recipientaccountid,
        t.useridentity.type AS identity_type,
        CASE
            WHEN t.useridentity.type = 'AssumedRole' THEN COALESCE(
                NULLIF(regexp_extract(t.useridentity.arn, '^arn:[^:]+:sts::[0-9]*:assumed-role/[^/]+'), ''),
                t.useridentity.arn)
            ELSE t.useridentity.arn
        END AS identity_arn,
        t.useridentity.accountid AS identity_account,
        CASE
            WHEN t.useridentity.type = 'AssumedRole' AND t.useridentity.arn <> '' THEN NULL
            ELSE t.useridentity.principalid
        END AS identity_principal_id,
        t.useridentity.username AS identity_user_name,
        t.useridentity.identityprovider AS identity_provider,
        t.useridentity.invokedby AS identity_invoked_by,
        t.useridentity.sessioncontext.sessionissuer.arn AS issuer_arn,
        CASE
            WHEN f.names IS NULL THEN t.requestparameters
            ELSE COALESCE(TRY(json_format(CAST(map_from_entries(filter(
                CAST(map_entries(CAST(json_parse(t.requestparameters) AS MAP(VARCHAR, JSON)))
                     AS ARRAY(ROW(key VARCHAR, value JSON))),
                e -> contains(f.names, lower(e.key)) OR lower(e.key) LIKE '%request')) AS JSON))),
                t.requestparameters)
        END AS request,
        CASE
            WHEN f.names IS NULL THEN t.responseelements
            ELSE COALESCE(TRY(json_format(CAST(map_from_entries(filter(
                CAST(map_entries(CAST(json_parse(t.responseelements) AS MAP(VARCHAR, JSON)))
                     AS ARRAY(ROW(key VARCHAR, value JSON))),
                e -> contains(f.names, lower(e.key)))) AS JSON))),
                t.responseelements)
        END AS response,
        json_format(CAST(transform(t.resources, r -> MAP(ARRAY['ARN', 'accountId', 'type'],
                                                         ARRAY[r.arn, r.accountid, r.type])) AS JSON)) AS resources,
        t.errorcode,
        CASE
            WHEN t.errorcode LIKE '%Denied%' OR t.errorcode LIKE '%Unauthori%' OR t.errorcode LIKE '%Forbidden%'
                 OR t.errorcode LIKE '%Authoriz%' THEN COALESCE(t.eventid, '')
        END AS denied_event_id,
        substr(t.eventtime, 1, 10) AS event_day,
        t.eventtime
    FROM {table} AS t
    LEFT JOIN (VALUES {kept_fields}) AS f (source, names) ON t.eventsource = f.source
    WHERE t.log_date IN ({log_dates}){scope}
)
SELECT
    log_date,
    eventsource,
    eventname,
    eventtype,
    awsregion,
    recipientaccountid,
    identity_type,
    identity_arn,
    identity_account,
    identity_principal_id,
    identity_user_name,
    identity_provider,
    identity_invoked_by,
    issuer_arn,
    request,
    response,
    resources,
    errorcode,
    denied_event_id,
    COUNT(*) AS calls,
    MIN(eventtime) AS first_time,
    MAX(eventtime) AS last_time
FROM calls
GROUP BY
    log_date, eventsource, eventname, eventtype, awsregion, recipientaccountid, identity_type, identity_arn,
    identity_account, identity_principal_id, identity_user_name, identity_provider, identity_invoked_by,
    issuer_arn, request, response, resources, errorcode, denied_event_id, event_day
