// Settings of the guestbook UI, imported by guestbook-ui.jsonnet.
{
  name: 'jsonnet-guestbook-ui',
  image: 'registry.k8s.io/e2e-test-images/agnhost:2.39',
  containerPort: 8080,
  servicePort: 80,
  serviceType: 'ClusterIP',
  replicas: 1,
}
