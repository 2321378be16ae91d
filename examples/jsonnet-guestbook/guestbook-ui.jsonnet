// The guestbook UI: a Service and the Deployment behind it. `replicas` is a top-level argument
// (gitops.yaml: jsonnet.tlas.replicas), defaulting to params.libsonnet's value.
local params = import 'params.libsonnet';

function(replicas=params.replicas)
  local labels = { app: params.name };
  [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: params.name },
      spec: {
        type: params.serviceType,
        selector: labels,
        ports: [{ port: params.servicePort, targetPort: params.containerPort }],
      },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: params.name },
      spec: {
        replicas: replicas,
        revisionHistoryLimit: 3,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels: labels },
          spec: {
            containers: [{
              name: params.name,
              image: params.image,
              args: ['netexec', '--http-port=%d' % params.containerPort],
              ports: [{ containerPort: params.containerPort }],
            }],
          },
        },
      },
    },
  ]
