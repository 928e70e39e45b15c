"""Alarms and the dashboard: DLQ depth, API 5xx rate, order latency p99, and the app's EMF metrics."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

# Powertools EMF: namespace and the default "service" dimension (chalicelib.core.observability).
NAMESPACE = "LiveDrop"
SERVICE = {"service": "livedrop"}
ORDER_LATENCY_P99_MS = 500
API_5XX_RATE = 0.01
# A stream consumer more than a minute behind: live pushes and stock status lag by as much.
ITERATOR_AGE_MS = 60_000
ALARM_TOPIC = "alarms"
# A notification or payment waiting five minutes is a consumer that is failing or starved.
OLDEST_MESSAGE_SECONDS = 300
PERIOD = cdk.Duration.minutes(1)
# M of N one-minute periods: a condition must hold for 3 of the last 5 minutes before anyone is paged,
# so one error, one throttle or a minute of cold starts at a drop's first rush pages no one.
DATAPOINTS, EVALUATION_PERIODS = 3, 5
# Lambda errors and throttles as a share of invocations, once a function has this many a minute: a
# single failure among a handful of calls is no incident.
FUNCTION_FAILURE_RATE = 0.01
MIN_INVOCATIONS = 20


def _app_metric(name: str, statistic: str = "Sum", label: str | None = None) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map=SERVICE,
        statistic=statistic,
        period=PERIOD,
        label=label or name,
    )


def _title(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _search(metric_prefix: str, label: str) -> cloudwatch.MathExpression:
    """Every app metric whose name starts with `metric_prefix` (e.g. OrderRejected_<reason>)."""
    return cloudwatch.MathExpression(
        expression=f"SEARCH('{{{NAMESPACE},service}} MetricName=\"{metric_prefix}\"', 'Sum', 60)",
        label=label,
        period=PERIOD,
    )


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        api_name: str,
        api_stage: str,
        function_names: Sequence[str],
        dead_letter_queues: Sequence[sqs.Queue],
        alarm_topic_arn: str | None = None,
        alarm_email: str | None = None,
        queues: Sequence[sqs.Queue] = (),
        stream_function_names: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        # Every alarm notifies this topic (and an existing one, when given): an alarm nobody hears is no alarm.
        self.topic = sns.Topic(self, "AlarmTopic", topic_name=f"livedrop-{stage}-{ALARM_TOPIC}", enforce_ssl=True)
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        alarm_actions = [actions.SnsAction(self.topic)]
        if alarm_topic_arn:
            alarm_actions.append(
                actions.SnsAction(sns.Topic.from_topic_arn(self, "ExternalAlarmTopic", alarm_topic_arn))
            )
        self.alarms: list[cloudwatch.Alarm] = []

        def alarm(
            alarm_id: str,
            metric: cloudwatch.IMetric,
            threshold: float,
            description: str,
            of: tuple[int, int] = (DATAPOINTS, EVALUATION_PERIODS),
        ) -> None:
            created = cloudwatch.Alarm(
                self,
                alarm_id,
                alarm_name=f"livedrop-{stage}-{alarm_id}",
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                datapoints_to_alarm=of[0],
                evaluation_periods=of[1],
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            created.add_alarm_action(*alarm_actions)
            self.alarms.append(created)

        dlq_depths = []
        for queue in dead_letter_queues:
            depth = queue.metric_approximate_number_of_messages_visible(
                period=PERIOD, statistic="Maximum", label=queue.node.id
            )
            dlq_depths.append(depth)
            # A dead letter is never noise, but it must still be there a minute later (a redrive in
            # progress empties the queue): 2 of 2 minutes.
            alarm(f"{queue.node.id}Depth", depth, 0, "Messages a consumer gave up on: inspect and redrive", of=(2, 2))

        api_dims = {"ApiName": api_name, "Stage": api_stage}
        errors_5xx = cloudwatch.Metric(
            namespace="AWS/ApiGateway",
            metric_name="5XXError",
            dimensions_map=api_dims,
            statistic="Average",
            period=PERIOD,
            label="5xx rate",
        )
        alarm("Api5xxRate", errors_5xx, API_5XX_RATE, "More than 1% of REST requests fail with 5xx, 3 of 5 minutes")
        order_latency = cloudwatch.Metric(
            namespace="AWS/ApiGateway",
            metric_name="Latency",
            dimensions_map={**api_dims, "Method": "POST", "Resource": "/orders"},
            statistic="p99",
            period=PERIOD,
            label="POST /orders p99",
        )
        # Cold starts crowd the first minute or two of a rush (new execution environments by the hundred):
        # only a p99 above 500 ms for 3 of 5 minutes is slowness that lasts.
        alarm(
            "OrderLatencyP99",
            order_latency,
            ORDER_LATENCY_P99_MS,
            "POST /orders p99 above 500 ms for 3 of 5 minutes (a cold-start minute is not enough)",
        )

        for queue in queues:
            oldest = queue.metric_approximate_age_of_oldest_message(
                period=PERIOD, statistic="Maximum", label=queue.node.id
            )
            alarm(
                f"{queue.node.id}OldestMessage",
                oldest,
                OLDEST_MESSAGE_SECONDS,
                "Messages wait too long for their consumer",
            )
        for name in stream_function_names:
            short = name.removeprefix(f"livedrop-{stage}-")
            age = cloudwatch.Metric(
                namespace="AWS/Lambda",
                metric_name="IteratorAge",
                dimensions_map={"FunctionName": name},
                statistic="Maximum",
                period=PERIOD,
                label=f"{short} iterator age",
            )
            alarm(f"{_title(short)}IteratorAge", age, ITERATOR_AGE_MS, "A stream consumer is more than a minute behind")
        for name in function_names:
            short = name.removeprefix(f"livedrop-{stage}-")

            def lambda_metric(metric_name: str, function: str = name) -> cloudwatch.Metric:
                return cloudwatch.Metric(
                    namespace="AWS/Lambda",
                    metric_name=metric_name,
                    dimensions_map={"FunctionName": function},
                    statistic="Sum",
                    period=PERIOD,
                )

            for metric_name in ("Errors", "Throttles"):
                # Throttled calls are not invocations: their rate is of everything that was asked for.
                asked = "invocations + failed" if metric_name == "Throttles" else "invocations"
                rate = cloudwatch.MathExpression(
                    expression=f"IF(invocations >= {MIN_INVOCATIONS}, failed / ({asked}), 0)",
                    using_metrics={"failed": lambda_metric(metric_name), "invocations": lambda_metric("Invocations")},
                    period=PERIOD,
                    label=f"{short} {metric_name.lower()} rate",
                )
                alarm(
                    f"{_title(short)}{metric_name}",
                    rate,
                    FUNCTION_FAILURE_RATE,
                    f"{short}: more than 1% of invocations {metric_name.lower()}, 3 of 5 minutes",
                )

        lambda_errors = [
            cloudwatch.Metric(
                namespace="AWS/Lambda",
                metric_name="Errors",
                dimensions_map={"FunctionName": name},
                statistic="Sum",
                period=PERIOD,
                label=name.removeprefix(f"livedrop-{stage}-"),
            )
            for name in function_names
        ]
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"livedrop-{stage}")
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Orders",
                left=[_app_metric("OrderPlaced", label="placed"), _search("OrderRejected_", "rejected")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Stock contention retries",
                left=[
                    _app_metric("ContentionRetries", label="retries"),
                    _app_metric("OrderRejected_try_again", label="gave up (503)"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(title="POST /orders latency", left=[order_latency], width=8),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Notifications",
                left=[
                    _app_metric("NotificationsPushed", label="pushed"),
                    _app_metric("PushFailures", label="push failures"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Notification delay (ms)",
                left=[
                    _app_metric("NotificationDelayMs", "p50", "p50"),
                    _app_metric("NotificationDelayMs", "p99", "p99"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Cache",
                left=[_app_metric("CacheHit", label="hits"), _app_metric("CacheMiss", label="misses")],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Dead-letter queue depths", left=dlq_depths, width=8),
            cloudwatch.GraphWidget(title="Lambda errors", left=lambda_errors, width=8),
            cloudwatch.GraphWidget(title="REST 5xx rate", left=[errors_5xx], width=8),
        )
        dashboard.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24))
