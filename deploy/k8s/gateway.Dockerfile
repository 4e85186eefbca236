# The gateway FROM scratch: the statically linked faas-gateway built with
# `--features k8s` (see deploy/k8s/build-image.sh). In a pod it reads the
# service account's in-cluster configuration; it needs no kubeconfig.
FROM scratch
COPY faas-gateway /usr/bin/faas-gateway
ENV FAAS_LISTEN=0.0.0.0:8080 \
    FAAS_PROVIDER=k8s \
    FAAS_STATE_DIR=/var/lib/faas-gateway
EXPOSE 8080
ENTRYPOINT ["/usr/bin/faas-gateway"]
