# A function image FROM scratch: the static fwatchdog as entrypoint, the
# static faas-healthcheck the service's health check runs, and busybox's
# applets so that fprocess can be `cat`, `sha512sum`, `env`, `wc`, `sh ...`.
# The context is the rootfs prepared by scripts/build-images.sh.
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/bin:/bin \
    fprocess=cat
EXPOSE 8080
ENTRYPOINT ["/usr/bin/fwatchdog"]
