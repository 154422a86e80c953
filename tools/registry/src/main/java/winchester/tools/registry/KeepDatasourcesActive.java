package winchester.tools.registry;

import io.smallrye.config.ConfigSourceInterceptor;
import io.smallrye.config.ConfigSourceInterceptorContext;
import io.smallrye.config.ConfigValue;
import io.smallrye.config.Priorities;
import jakarta.annotation.Priority;

/**
 * Keeps Apicurio Registry 3.0.9's four datasources active on Quarkus 3.33.
 *
 * <p>The registry injects all four of its datasources (h2, postgresql, mysql, mssql) into one producer and
 * deactivates the three it does not use through its own config interceptor. Quarkus 3.15, which 3.0.9 was
 * built with, allowed injecting an inactive datasource; Quarkus 3.33 (the version served here) refuses at
 * start-up. This interceptor runs before the registry's and answers "active" for the three unused ones;
 * the start script gives them pools of size zero and addresses nobody listens on, so they never connect.
 */
@Priority(Priorities.APPLICATION + 200)
public class KeepDatasourcesActive implements ConfigSourceInterceptor {
    private static final long serialVersionUID = 1L;

    @Override
    public ConfigValue getValue(ConfigSourceInterceptorContext context, String name) {
        switch (name) {
            case "quarkus.datasource.postgresql.active":
            case "quarkus.datasource.mysql.active":
            case "quarkus.datasource.mssql.active":
                return ConfigValue.builder().withName(name).withValue("true").build();
            default:
                return context.proceed(name);
        }
    }
}
