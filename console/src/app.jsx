// The console: sign-in until there is a session, then the shell with one route per page.
import { LocationProvider, Route, Router, lazy } from 'preact-iso';
import { useEffect, useState } from 'preact/hooks';
import { Loading } from './components/bits.jsx';
import { Shell } from './components/Shell.jsx';
import { Toasts } from './components/Toasts.jsx';
import { NotFound } from './pages/NotFound.jsx';
import { Overview } from './pages/overview/Overview.jsx';
import { SignIn } from './pages/SignIn.jsx';
import { loadSession, session } from './session.js';
import { useStore } from './store.js';

// Each page but the overview is its own chunk, fetched when first opened.
const Audit = lazy(() => import('./pages/admin/Audit.jsx').then((m) => m.Audit));
const Keys = lazy(() => import('./pages/admin/Keys.jsx').then((m) => m.Keys));
const Users = lazy(() => import('./pages/admin/Users.jsx').then((m) => m.Users));
const Envs = lazy(() => import('./pages/envs/Envs.jsx').then((m) => m.Envs));
const DeadLetters = lazy(() => import('./pages/deadletters/DeadLetters.jsx').then((m) => m.DeadLetters));
const ScriptsPage = lazy(() => import('./pages/scripts/ScriptsPage.jsx').then((m) => m.ScriptsPage));
const TaskDetail = lazy(() => import('./pages/tasks/TaskDetail.jsx').then((m) => m.TaskDetail));
const TasksPage = lazy(() => import('./pages/tasks/TasksPage.jsx').then((m) => m.TasksPage));
const Cluster = lazy(() => import('./pages/operate/Cluster.jsx').then((m) => m.Cluster));
const Connectors = lazy(() => import('./pages/triggers/Connectors.jsx').then((m) => m.Connectors));
const Cron = lazy(() => import('./pages/triggers/Cron.jsx').then((m) => m.Cron));
const Endpoints = lazy(() => import('./pages/triggers/Endpoints.jsx').then((m) => m.Endpoints));
const Hub = lazy(() => import('./pages/triggers/Hub.jsx').then((m) => m.Hub));
const Subscriptions = lazy(() => import('./pages/triggers/Subscriptions.jsx').then((m) => m.Subscriptions));

export function App() {
  const user = useStore(session);
  const [problem, setProblem] = useState(null);
  useEffect(() => {
    loadSession().catch(setProblem);
  }, []);
  if (user === undefined) return <Loading />;
  return (
    <LocationProvider>
      {user === null ? (
        <SignIn problem={problem} />
      ) : (
        <Shell user={user}>
          <Router>
            <Route path="/" component={Overview} />
            <Route path="/scripts/:name?/:tab?/:fn?" component={ScriptsPage} user={user} />
            <Route path="/tasks" component={TasksPage} />
            <Route path="/tasks/:id" component={TaskDetail} user={user} />
            <Route path="/dead-letters" component={DeadLetters} user={user} />
            <Route path="/envs" component={Envs} user={user} />
            <Route path="/connectors/:name?" component={Connectors} user={user} />
            <Route path="/subscriptions/:name?" component={Subscriptions} user={user} />
            <Route path="/cron" component={Cron} user={user} />
            <Route path="/endpoints/:name?" component={Endpoints} user={user} />
            <Route path="/hub/:tab?" component={Hub} user={user} />
            <Route path="/cluster" component={Cluster} />
            <Route path="/keys" component={Keys} user={user} />
            <Route path="/users" component={Users} user={user} />
            <Route path="/audit" component={Audit} user={user} />
            <Route default component={NotFound} />
          </Router>
        </Shell>
      )}
      <Toasts />
    </LocationProvider>
  );
}
